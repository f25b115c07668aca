# The four entry points of functions/index.ts, one gen2 function each; the function name equals the
# registered name and the entry point.
# The scheduler tick was deployed as `batch` before it was named `tick`: see moved.tf for what an
# existing deployment's plan replaces.
#
# Build: the archive holds the prebuilt dist/ (tsc output of `npm run build`), package.json and
# package-lock.json. GOOGLE_NODE_RUN_SCRIPTS="" tells the Node.js buildpack to run no package.json
# script: it installs production dependencies only (`npm ci` with NODE_ENV=production) and the
# Functions Framework loads package.json "main" (dist/functions/index.js). Building in the cloud
# instead would need the TypeScript sources and devDependencies in the archive and would compile
# something other than what CI tested.

locals {
  # What every function's configuration (functions/platform/config.ts) needs in the cloud.
  # GEMINI_BASE_URL stays unset: the SDK talks to the real Gemini API.
  common_env = {
    NODE_ENV               = "production"
    GOOGLE_CLOUD_PROJECT   = var.project_id
    REGION                 = var.region
    FANOUT_BUCKET          = google_storage_bucket.fanout.name
    WORKER_URL             = local.worker_url
    TASKS_SERVICE_ACCOUNT  = google_service_account.tasks.email
    GEMINI_TIMEOUT_MS      = tostring(var.gemini_timeout_ms)
    GEMINI_FLEX_TIMEOUT_MS = tostring(var.gemini_flex_timeout_ms)
    LOG_LEVEL              = var.log_level
    # Tenancy (tenants.tf): the media roots and shared samples the worker's IAM Condition allows,
    # the bucket owners, and how long jobs and items are kept.
    MEDIA_GCS_ALLOWED    = join(",", [for p in var.media_prefixes : "gs://${google_storage_bucket.fanout.name}/${p}"])
    MEDIA_GCS_SHARED     = join(",", [for p in var.media_shared_prefixes : "gs://${google_storage_bucket.fanout.name}/${p}"])
    FANOUT_BUCKET_OWNERS = join(",", var.bucket_owners)
    RETENTION_DAYS       = tostring(var.retention_days)
    # Several items a task (functions/core/task-groups.ts): the queues are sized for the same k (queues.tf).
    ITEMS_PER_TASK = tostring(var.items_per_task)
  }

  build_env = {
    GOOGLE_NODE_RUN_SCRIPTS = ""
  }

  # Ingest and tick check the audience of the ID tokens they take (functions/platform/id-token.ts), so
  # their own URLs are needed before they exist (a self-reference otherwise): the same 1st-gen style
  # URL as local.worker_url (main.tf), checked by the postconditions below.
  ingest_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names.ingest}"
  tick_url   = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names.tick}"
  # The `aud` of `gcloud auth print-identity-token` for a user account (gcloud's own OAuth client),
  # which Cloud Run accepts for developers (README: Calling a deployed system).
  gcloud_audience = "32555940559.apps.googleusercontent.com"

  # Item tasks are dispatched with a deadline of the longer Gemini timeout (standard or Flex) + 30 s
  # (functions/platform/config.ts `dispatchDeadlineFor`, 15 s to 30 min) and an enqueuing run hands over after 8 minutes (its task's
  # deadline is 10). A delivery may run longer than its dispatch deadline: media (up to 50 s), a
  # replan (15 s), the call (T), then the paid answer's write retried to its renewed lease's end and
  # parked (about 60 s): about T + 125 s at worst. The worker outlives that with a margin, so a paid
  # answer is never cut off by the function's own timeout.
  worker_timeout_seconds = max(600, ceil(max(var.gemini_timeout_ms, var.gemini_flex_timeout_ms) / 1000) + 180)

  # The four functions, by registered name (local.function_names: name = entry point). Each is one
  # instance of the function below, with its own service account (iam.tf, fanout-<name>) and its own
  # invoker grants. `invokers` is who may call it (roles/run.invoker), keyed as the grant is (see
  # google_cloud_run_service_iam_member.invoker); `env` adds to common_env; `event_trigger` is set for
  # event-driven functions only.
  functions = {
    # The jobs API for clients.
    ingest = {
      enabled      = true
      description  = "gemini-fanout jobs API: create, status, results, events (SSE), cancel"
      account_name = "gemini-fanout ingest function (jobs API)"
      # 60 min: the HTTP maximum, so GET /jobs/{id}/events (SSE) streams a long job to its end.
      timeout_seconds = 3600
      memory          = "1Gi" # a POST /jobs body of up to 32 MB is parsed in memory
      concurrency     = 80    # mostly idle SSE streams and short Firestore calls
      max_instances   = var.ingest_max_instances
      # Reachable from the internet, callable only with an identity token of an ingest_invokers member.
      ingress = "ALLOW_ALL"
      # Ingest verifies every caller's ID token itself (functions/platform/caller.ts): its own URL and
      # gcloud's user tokens are the audiences; a token whose signature Cloud Run removed after
      # verifying it is taken on Cloud Run's word, its claims still checked.
      env = {
        FANOUT_AUDIENCES              = "${local.ingest_url},${local.gcloud_audience}"
        FANOUT_ACCEPT_STRIPPED_TOKENS = "true"
      }
      event_trigger = null
      invokers      = { for m in toset(var.ingest_invokers) : m => m } # a member listed twice is one grant
    }

    # One Cloud Tasks item.
    worker = {
      enabled         = true
      description     = "gemini-fanout worker: one item per Cloud Tasks delivery"
      account_name    = "gemini-fanout worker function (one Cloud Tasks item)"
      timeout_seconds = local.worker_timeout_seconds
      memory          = "2Gi" # media is fetched and sent inline, so an instance holds several images at once
      # A worker request spends nearly all its time waiting on Gemini: many share one vCPU. The queues'
      # dispatch rates, not instance counts, keep Gemini under quota.
      concurrency   = var.worker_concurrency
      max_instances = var.worker_max_instances
      # Cloud Tasks calls the public URL; only the tasks account may invoke, and the worker itself
      # verifies the token's audience and email. Its URL is checked against WORKER_URL (postcondition).
      ingress       = "ALLOW_ALL"
      env           = {}
      event_trigger = null
      invokers      = { worker = "serviceAccount:${google_service_account.tasks.email}" }
    }

    # One Cloud Scheduler tick: resume quota-paused queues, the Batch API cycle, reconcile, bucket
    # results files, the callback outbox (functions/tick/).
    tick = {
      enabled      = true
      description  = "gemini-fanout scheduler tick: resume quota-paused queues, Batch API submit/poll/collect, reconcile, exports, callbacks"
      account_name = "gemini-fanout tick function (scheduler tick)"
      # A tick streams Batch API input and output files; it may take minutes. It matches the scheduler
      # job's attempt deadline (30 min, the Cloud Scheduler maximum for HTTP targets).
      timeout_seconds = 1800
      memory          = "1Gi"
      # One tick at a time: a tick that overruns the minute makes the next one wait, not race it.
      concurrency   = 1
      max_instances = 1
      ingress       = "ALLOW_ALL"
      env = {
        BATCH_PENDING_DEADLINE_MS = tostring(var.batch_pending_deadline_ms)
        # Tick takes only Cloud Scheduler's OIDC token (scheduler.tf): for the scheduler account, with
        # its own URL as the audience.
        TICK_URL                      = local.tick_url
        SCHEDULER_SERVICE_ACCOUNT     = google_service_account.scheduler.email
        FANOUT_ACCEPT_STRIPPED_TOKENS = "true"
      }
      event_trigger = null
      invokers      = { tick = "serviceAccount:${google_service_account.scheduler.email}" }
    }

    # A JSONL file under inbox/ becomes a job. Eventarc's Cloud Storage events filter on the bucket
    # only (no object prefix), so the function's own guard ignores everything outside inbox/ (its
    # results/ and staging/ writes included).
    intake = {
      enabled         = var.enable_intake
      description     = "gemini-fanout intake: a JSONL file finalized under inbox/ becomes a job"
      account_name    = "gemini-fanout intake function (bucket inbox/ files)"
      timeout_seconds = 540 # the maximum for event-driven functions
      # The file is streamed line by line into Firestore; memory stays bounded by the write batch.
      memory        = "1Gi"
      concurrency   = 4
      max_instances = 10
      # Events arrive from Eventarc (Pub/Sub push), which counts as internal traffic.
      ingress = "ALLOW_INTERNAL_ONLY"
      env     = {}
      event_trigger = {
        event_type            = "google.cloud.storage.object.v1.finalized"
        bucket                = google_storage_bucket.fanout.name
        service_account_email = one(google_service_account.intake_trigger[*].email)
        # Intake throws to be retried and returns to acknowledge (design): failed deliveries come back.
        retry_policy = "RETRY_POLICY_RETRY"
      }
      # Only the Eventarc trigger's identity. The condition keeps intake_trigger[0] unread when
      # enable_intake is false (the entry is then left out anyway).
      invokers = var.enable_intake ? { intake = "serviceAccount:${google_service_account.intake_trigger[0].email}" } : {}
    }
  }

  deployed_functions = { for name, f in local.functions : name => f if f.enabled }
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.deployed_functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = each.value.description
  labels      = local.labels

  build_config {
    runtime               = var.runtime
    entry_point           = local.function_names[each.key]
    environment_variables = local.build_env
    service_account       = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function[each.key].email
    timeout_seconds                  = each.value.timeout_seconds
    available_memory                 = each.value.memory
    available_cpu                    = "1"
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = 0
    max_instance_count               = each.value.max_instances
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.common_env, local.vertex_env, each.value.env)

    # The functions that call Gemini only (local.gemini_callers, secrets.tf); the others have no
    # grant on the secret and their configuration does not read it.
    dynamic "secret_environment_variables" {
      for_each = contains(local.gemini_callers, each.key) ? [true] : []

      content {
        key        = "GEMINI_API_KEY"
        project_id = var.project_id
        secret     = google_secret_manager_secret.gemini_api_key.secret_id
        version    = "latest"
      }
    }

    # The callback senders only (local.callback_senders, secrets.tf): the master secret every owner's
    # callback key is derived from. The others have no grant on the secret, so they must not bind it.
    dynamic "secret_environment_variables" {
      for_each = contains(local.callback_senders, each.key) ? [true] : []

      content {
        key        = "CALLBACK_SECRET"
        project_id = var.project_id
        secret     = google_secret_manager_secret.callback_secret.secret_id
        version    = "latest"
      }
    }

    # Tick only, when var.batch_webhooks is on (secrets.tf): the signing secret of Gemini's batch
    # webhooks, the one thing that authenticates `POST /gemini-webhook`.
    dynamic "secret_environment_variables" {
      for_each = each.key == "tick" && var.batch_webhooks ? [true] : []

      content {
        key        = "GEMINI_WEBHOOK_SECRET"
        project_id = var.project_id
        secret     = one(google_secret_manager_secret.gemini_webhook_secret[*].secret_id)
        version    = "latest"
      }
    }
  }

  # Intake only: `[*]` makes a null trigger an empty list and a trigger a list of one.
  dynamic "event_trigger" {
    for_each = each.value.event_trigger[*]

    content {
      trigger_region        = var.region # must be the bucket's location
      event_type            = event_trigger.value.event_type
      service_account_email = event_trigger.value.service_account_email
      retry_policy          = event_trigger.value.retry_policy

      event_filters {
        attribute = "bucket"
        value     = event_trigger.value.bucket
      }
    }
  }

  depends_on = [
    google_project_service.enabled,
    # The runtime account reads the secret at instance start: a deploy before the grant fails.
    google_secret_manager_secret_iam_member.gemini_api_key_accessor,
    google_secret_manager_secret_iam_member.callback_secret_accessor,
    google_secret_manager_secret_iam_member.gemini_webhook_secret_accessor,
    google_project_iam_member.firestore_user,
    google_storage_bucket_iam_member.fanout_object_user,
    # Intake's trigger needs these two (empty when enable_intake is false); the others merely wait.
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.intake_trigger_event_receiver,
  ]

  lifecycle {
    postcondition {
      condition     = each.key != "worker" || self.url == local.worker_url
      error_message = "The worker's URL is ${self.url}, not ${local.worker_url}: WORKER_URL (OIDC audience and task target) would not match; set local.worker_url in main.tf to the function's URL."
    }
    postcondition {
      condition     = each.key != "ingest" || self.url == local.ingest_url
      error_message = "Ingest's URL is ${self.url}, not ${local.ingest_url}: FANOUT_AUDIENCES would not match its callers' tokens; set local.ingest_url in functions.tf to the function's URL."
    }
    postcondition {
      condition     = each.key != "tick" || self.url == local.tick_url
      error_message = "Tick's URL is ${self.url}, not ${local.tick_url}: TICK_URL would not match Cloud Scheduler's token; set local.tick_url in functions.tf to the function's URL."
    }
  }
}

# --- Invokers: gen2 functions are Cloud Run services, invoked with roles/run.invoker on the service --
# (roles/cloudfunctions.invoker does not apply to gen2). No function has a public invoker
# (ingest_invokers refuses allUsers and allAuthenticatedUsers).
#
# One grant per member of each function's `invokers`. Keys: a member of ingest_invokers is its own key
# (the keys the former ingest_invoker resource had, so moved.tf carries those grants over instead of
# revoking and granting them again); a grant to one of our service accounts is keyed by the function's
# name, as for_each keys must be known at plan time and an account's email is not until it exists.
locals {
  invoker_grants = merge([
    for name, f in local.deployed_functions : {
      for key, member in f.invokers : key => { function = name, member = member }
    }
  ]...)
}

resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.invoker_grants

  project  = var.project_id
  location = google_cloudfunctions2_function.function[each.value.function].location
  service  = google_cloudfunctions2_function.function[each.value.function].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value.member
}
