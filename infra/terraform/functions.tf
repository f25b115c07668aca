# The four entry points of functions/index.ts, one gen2 function each; the function name equals the
# registered name and the entry point.
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
    NODE_ENV              = "production"
    GOOGLE_CLOUD_PROJECT  = var.project_id
    REGION                = var.region
    FANOUT_BUCKET         = google_storage_bucket.fanout.name
    WORKER_URL            = local.worker_url
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email
    GEMINI_TIMEOUT_MS     = tostring(var.gemini_timeout_ms)
    LOG_LEVEL             = var.log_level
  }

  build_env = {
    GOOGLE_NODE_RUN_SCRIPTS = ""
  }

  # Tasks are dispatched with a 600 s deadline (functions/platform/task-queue.ts) and an enqueuing
  # run hands over after 8 minutes; the worker outlives both and any Gemini call with its margin.
  worker_timeout_seconds = max(600, ceil(var.gemini_timeout_ms / 1000) + 120)
}

# --- ingest: the jobs API for clients ---------------------------------------------------------------
resource "google_cloudfunctions2_function" "ingest" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.ingest
  description = "gemini-fanout jobs API: create, status, results, events (SSE), cancel"
  labels      = local.labels

  build_config {
    runtime               = var.runtime
    entry_point           = local.function_names.ingest
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
    service_account_email = google_service_account.ingest.email
    # 60 min: the HTTP maximum, so GET /jobs/{id}/events (SSE) streams a long job to its end.
    timeout_seconds                  = 3600
    available_memory                 = "1Gi" # a POST /jobs body of up to 32 MB is parsed in memory
    available_cpu                    = "1"
    max_instance_request_concurrency = 80 # mostly idle SSE streams and short Firestore calls
    min_instance_count               = 0
    max_instance_count               = var.ingest_max_instances
    # Reachable from the internet, callable only with an identity token of an ingest_invokers member.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    environment_variables          = local.common_env

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    google_project_service.enabled,
    # The runtime account reads the secret at instance start: a deploy before the grant fails.
    google_secret_manager_secret_iam_member.gemini_api_key_accessor,
    google_project_iam_member.firestore_user,
    google_storage_bucket_iam_member.fanout_object_user,
  ]
}

# --- worker: one Cloud Tasks item ------------------------------------------------------------------
resource "google_cloudfunctions2_function" "worker" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.worker
  description = "gemini-fanout worker: one item per Cloud Tasks delivery"
  labels      = local.labels

  build_config {
    runtime               = var.runtime
    entry_point           = local.function_names.worker
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
    service_account_email = google_service_account.worker.email
    timeout_seconds       = local.worker_timeout_seconds
    # Media is fetched and sent inline, so an instance holds several images at once.
    available_memory = "2Gi"
    available_cpu    = "1"
    # A worker request spends nearly all its time waiting on Gemini: many share one vCPU. The queues'
    # dispatch rates, not instance counts, keep Gemini under quota.
    max_instance_request_concurrency = var.worker_concurrency
    min_instance_count               = 0
    max_instance_count               = var.worker_max_instances
    # Cloud Tasks calls the public URL; only the tasks account may invoke (IAM below), and the worker
    # itself verifies the token's audience and email.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    environment_variables          = local.common_env

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    google_project_service.enabled,
    # The runtime account reads the secret at instance start: a deploy before the grant fails.
    google_secret_manager_secret_iam_member.gemini_api_key_accessor,
    google_project_iam_member.firestore_user,
    google_storage_bucket_iam_member.fanout_object_user,
  ]

  lifecycle {
    postcondition {
      condition     = self.url == local.worker_url
      error_message = "The worker's URL is ${self.url}, not ${local.worker_url}: WORKER_URL (OIDC audience and task target) would not match; set local.worker_url in main.tf to the function's URL."
    }
  }
}

# --- batch: one Cloud Scheduler tick --------------------------------------------------------------
resource "google_cloudfunctions2_function" "batch" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.batch
  description = "gemini-fanout scheduler tick: Batch API submit/poll/collect, resume quota-paused queues"
  labels      = local.labels

  build_config {
    runtime               = var.runtime
    entry_point           = local.function_names.batch
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
    service_account_email = google_service_account.batch.email
    # A tick streams Batch API input and output files; it may take minutes. It matches the scheduler
    # job's attempt deadline (30 min, the Cloud Scheduler maximum for HTTP targets).
    timeout_seconds  = 1800
    available_memory = "1Gi"
    available_cpu    = "1"
    # One tick at a time: a tick that overruns the minute makes the next one wait, not race it.
    max_instance_request_concurrency = 1
    min_instance_count               = 0
    max_instance_count               = 1
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    google_project_service.enabled,
    # The runtime account reads the secret at instance start: a deploy before the grant fails.
    google_secret_manager_secret_iam_member.gemini_api_key_accessor,
    google_project_iam_member.firestore_user,
    google_storage_bucket_iam_member.fanout_object_user,
  ]
}

# --- intake: a JSONL file under inbox/ becomes a job -------------------------------------------------
# Eventarc's Cloud Storage events filter on the bucket only (no object prefix), so the function's own
# guard ignores everything outside inbox/ (its results/ and staging/ writes included).
resource "google_cloudfunctions2_function" "intake" {
  count = var.enable_intake ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = local.function_names.intake
  description = "gemini-fanout intake: a JSONL file finalized under inbox/ becomes a job"
  labels      = local.labels

  build_config {
    runtime               = var.runtime
    entry_point           = local.function_names.intake
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
    service_account_email = google_service_account.intake[0].email
    timeout_seconds       = 540 # the maximum for event-driven functions
    # The file is streamed line by line into Firestore; memory stays bounded by the write batch.
    available_memory                 = "1Gi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 4
    min_instance_count               = 0
    max_instance_count               = 10
    # Events arrive from Eventarc (Pub/Sub push), which counts as internal traffic.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = local.common_env

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = "latest"
    }
  }

  event_trigger {
    trigger_region        = var.region # must be the bucket's location
    event_type            = "google.cloud.storage.object.v1.finalized"
    service_account_email = google_service_account.intake_trigger[0].email
    # Intake throws to be retried and returns to acknowledge (design): failed deliveries come back.
    retry_policy = "RETRY_POLICY_RETRY"

    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.fanout.name
    }
  }

  depends_on = [
    google_project_service.enabled,
    # The runtime account reads the secret at instance start: a deploy before the grant fails.
    google_secret_manager_secret_iam_member.gemini_api_key_accessor,
    google_project_iam_member.firestore_user,
    google_storage_bucket_iam_member.fanout_object_user,
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.intake_trigger_event_receiver,
  ]
}

# --- Invokers: gen2 functions are Cloud Run services, invoked with roles/run.invoker on the service --
# (roles/cloudfunctions.invoker does not apply to gen2). No function has a public invoker.

resource "google_cloud_run_service_iam_member" "ingest_invoker" {
  for_each = toset(var.ingest_invokers)

  project  = var.project_id
  location = google_cloudfunctions2_function.ingest.location
  service  = google_cloudfunctions2_function.ingest.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# Only Cloud Tasks' OIDC identity may call the worker.
resource "google_cloud_run_service_iam_member" "worker_invoker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.worker.location
  service  = google_cloudfunctions2_function.worker.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks.email}"
}

# Only Cloud Scheduler's OIDC identity may call batch.
resource "google_cloud_run_service_iam_member" "batch_invoker" {
  project  = var.project_id
  location = google_cloudfunctions2_function.batch.location
  service  = google_cloudfunctions2_function.batch.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Only the Eventarc trigger's identity may call intake.
resource "google_cloud_run_service_iam_member" "intake_invoker" {
  count = var.enable_intake ? 1 : 0

  project  = var.project_id
  location = google_cloudfunctions2_function.intake[0].location
  service  = google_cloudfunctions2_function.intake[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.intake_trigger[0].email}"
}
