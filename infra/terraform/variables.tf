variable "project_id" {
  description = "Id of the Google Cloud project everything is deployed to (GOOGLE_CLOUD_PROJECT of the functions)."
  type        = string

  validation {
    # Same rule as functions/platform/config.ts.
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6-30 chars, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, queues, bucket and scheduler job (REGION of the functions), e.g. us-central1."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "firestore_location" {
  description = "Location of the (default) Firestore database: a region (us-central1) or a multi-region (nam5, eur3). Null means var.region. Cannot change after creation."
  type        = string
  default     = null
}

variable "bucket_name" {
  description = "Globally unique name of the bucket holding inbox/, staging/ and results/ (FANOUT_BUCKET)."
  type        = string

  validation {
    # Same rule as functions/platform/config.ts; dotted names need domain verification, so no dots.
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.bucket_name)) && !startswith(var.bucket_name, "goog")
    error_message = "bucket_name must be 3-63 chars of lowercase letters, digits, '-' and '_', start and end with a letter or digit, and not start with 'goog'."
  }
}

variable "source_bucket_name" {
  description = "Bucket for the functions' source archives. Null means \"<project_id>-fanout-sources\"."
  type        = string
  default     = null

  validation {
    condition     = var.source_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", coalesce(var.source_bucket_name, "ok0")))
    error_message = "source_bucket_name must be a valid bucket name without dots."
  }
}

variable "staging_retention_days" {
  description = "Days after which objects under staging/ (Batch API input files) are deleted. The Batch API gives up on a batch after 48 h, so 3 days leaves room for a late collect."
  type        = number
  default     = 3

  validation {
    condition     = var.staging_retention_days >= 1 && floor(var.staging_retention_days) == var.staging_retention_days
    error_message = "staging_retention_days must be a whole number of days, at least 1."
  }
}

variable "retention_days" {
  description = "Days jobs and items are kept (Firestore TTL on expireAt, RETENTION_DAYS) and objects under answers/ and results/ (bucket lifecycle), counted from creation. Keep it above the longest a job may run."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 3 && var.retention_days <= 3650 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days from 3 to 3650 (the range RETENTION_DAYS takes)."
  }
}

variable "media_prefixes" {
  description = "Media roots in the data bucket (MEDIA_GCS_ALLOWED): each owner reads gs:// media only from its own folder in each, {root}{owner prefix}/."
  type        = list(string)
  default     = ["media/"]

  validation {
    condition = length(var.media_prefixes) > 0 && alltrue([
      for p in var.media_prefixes : endswith(p, "/") && p != "/" && !anytrue([for i in ["inbox/", "staging/", "answers/", "results/"] : startswith(p, i)])
    ])
    error_message = "media_prefixes must be folders ending in / (not the bucket root), outside inbox/, staging/, answers/ and results/."
  }
}

variable "media_shared_prefixes" {
  description = "Read-only media folders of the data bucket every caller may use (MEDIA_GCS_SHARED), e.g. samples. Must not hold a media root."
  type        = list(string)
  default     = ["media/samples/"]

  validation {
    condition = alltrue([
      for p in var.media_shared_prefixes : endswith(p, "/") && p != "/" && !anytrue([for i in ["inbox/", "staging/", "answers/", "results/"] : startswith(p, i)])
    ])
    error_message = "media_shared_prefixes must be folders ending in / (not the bucket root), outside inbox/, staging/, answers/ and results/."
  }
}

variable "gemini_secret_id" {
  description = <<-EOT
    Id of the Secret Manager secret created for GEMINI_API_KEY. Terraform creates the secret, never its
    value: add the key as a version before the first full apply, e.g.
      printf '%s' "$GEMINI_API_KEY" | gcloud secrets versions add gemini-api-key --data-file=- --project=PROJECT
    The functions read version "latest" at instance start-up, so a rotated key reaches new instances.
  EOT
  type        = string
  default     = "gemini-api-key"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.gemini_secret_id))
    error_message = "gemini_secret_id may contain only letters, digits, '_' and '-' (at most 255 chars)."
  }
}

variable "callback_secret_id" {
  description = <<-EOT
    Id of the Secret Manager secret created for CALLBACK_SECRET, the master secret each owner's callback
    key is derived from (owners fetch theirs with GET /callback-key; the secret itself is given to no one).
    Terraform creates the secret, never its value: add a random value of at least 32 characters before
    the first full apply, e.g.
      openssl rand -hex 32 | tr -d '\n' | gcloud secrets versions add fanout-callback-secret --data-file=- --project=PROJECT
  EOT
  type        = string
  default     = "fanout-callback-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.callback_secret_id))
    error_message = "callback_secret_id may contain only letters, digits, '_' and '-' (at most 255 chars)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "fatal", "silent"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error, fatal, silent."
  }
}

variable "gemini_timeout_ms" {
  description = "GEMINI_TIMEOUT_MS: how long the worker waits for one Gemini answer."
  type        = number
  default     = 300000

  validation {
    # The worker's tasks carry a 600 s dispatch deadline (functions/platform/task-queue.ts): a Gemini
    # call must end well before Cloud Tasks stops waiting, or every slow answer is paid for twice.
    condition     = var.gemini_timeout_ms >= 1000 && var.gemini_timeout_ms <= 540000 && floor(var.gemini_timeout_ms) == var.gemini_timeout_ms
    error_message = "gemini_timeout_ms must be a whole number between 1000 and 540000 (tasks are dispatched with a 600 s deadline)."
  }
}

variable "gemini_flex_timeout_ms" {
  description = "GEMINI_FLEX_TIMEOUT_MS: how long the worker waits for one Flex answer (mode flex). Flex answers within 1-15 minutes; Google asks for client timeouts of 10 minutes or more."
  type        = number
  default     = 600000

  validation {
    # Item tasks are dispatched with the longer timeout + 30 s, and Cloud Tasks allows 30 minutes at most.
    condition     = var.gemini_flex_timeout_ms >= 1000 && var.gemini_flex_timeout_ms <= 1700000 && floor(var.gemini_flex_timeout_ms) == var.gemini_flex_timeout_ms
    error_message = "gemini_flex_timeout_ms must be a whole number between 1000 and 1700000."
  }
}

variable "batch_pending_deadline_ms" {
  description = "BATCH_PENDING_DEADLINE_MS of the tick function: how long a Gemini batch may stay PENDING before its items without a result go back to the realtime path. Default 24 h."
  type        = number
  default     = 86400000

  validation {
    # Below one scheduler tick the deadline cannot be honoured more precisely than the tick; past 48 h
    # the Batch API has expired the batch anyway (EXPIRED goes back to the realtime path by itself).
    condition     = var.batch_pending_deadline_ms >= 60000 && var.batch_pending_deadline_ms <= 172800000 && floor(var.batch_pending_deadline_ms) == var.batch_pending_deadline_ms
    error_message = "batch_pending_deadline_ms must be a whole number of milliseconds between 60000 (one scheduler tick) and 172800000 (48 h, when the Batch API expires a batch)."
  }
}

variable "enable_intake" {
  description = "Deploy the intake function (CloudEvent on object finalize in the bucket, for JSONL files under inbox/) and its Eventarc trigger."
  type        = bool
  default     = true
}

variable "source_dir" {
  description = "Repository root holding package.json, package-lock.json and the compiled dist/ (run `npm ci && npm run build` first). Null means two levels above this module."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Cloud Functions runtime id for all functions."
  type        = string
  default     = "nodejs22"

  validation {
    # package.json: engines.node >= 22 (the current majors of the Google Cloud clients need it).
    condition     = contains(["nodejs22", "nodejs24"], var.runtime)
    error_message = "runtime must be nodejs22 or nodejs24."
  }
}

variable "build_service_account" {
  description = "Optional service account (projects/PROJECT/serviceAccounts/EMAIL) Cloud Build uses to build the functions; null keeps the platform's default build account. Needs roles/cloudbuild.builds.builder."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", coalesce(var.build_service_account, "x")))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "ingest_invokers" {
  description = "IAM members allowed to call the private jobs API (roles/run.invoker on ingest), e.g. [\"group:fanout-users@example.com\", \"serviceAccount:client@p.iam.gserviceaccount.com\"]. Public access is refused."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.ingest_invokers :
      can(regex("^(user|group|serviceAccount|domain|principal|principalSet):.+$", m)) && !contains(["allUsers", "allAuthenticatedUsers"], m)
    ])
    error_message = "ingest_invokers must be IAM members such as user:…, group:…, serviceAccount:…; allUsers and allAuthenticatedUsers are not allowed (the jobs API is private)."
  }
}

variable "worker_max_instances" {
  description = "Upper bound of worker instances. Each takes worker_concurrency requests; sum of all model queues' in-flight Gemini calls must fit in max_instances × concurrency."
  type        = number
  default     = 100

  validation {
    condition     = var.worker_max_instances >= 1 && var.worker_max_instances <= 1000
    error_message = "worker_max_instances must be between 1 and 1000."
  }
}

variable "worker_concurrency" {
  description = "Requests one worker instance serves at once. The worker mostly waits on Gemini, so many calls share one vCPU."
  type        = number
  default     = 80

  validation {
    condition     = var.worker_concurrency >= 1 && var.worker_concurrency <= 1000
    error_message = "worker_concurrency must be between 1 and 1000 (the Cloud Functions ceiling)."
  }
}

variable "items_per_task" {
  description = "Items one Cloud Tasks task carries at most (the items of a job planned for the same second; 1: a task per item). The functions get it as ITEMS_PER_TASK and queues.tf sizes each model's queue in tasks of that many."
  type        = number
  default     = 1

  validation {
    condition     = var.items_per_task >= 1 && var.items_per_task <= 50 && floor(var.items_per_task) == var.items_per_task
    error_message = "items_per_task must be a whole number from 1 to 50 (MAX_ITEMS_PER_TASK in functions/core/quotas.ts)."
  }
}

variable "ingest_max_instances" {
  description = "Upper bound of ingest instances (each holds up to 80 requests, including long SSE streams)."
  type        = number
  default     = 20

  validation {
    condition     = var.ingest_max_instances >= 1 && var.ingest_max_instances <= 1000
    error_message = "ingest_max_instances must be between 1 and 1000."
  }
}

variable "labels" {
  description = "Labels added to every labelled resource."
  type        = map(string)
  default     = {}
}

variable "use_vertex_ai" {
  description = <<-EOT
    Call Gemini on Vertex AI instead of the Gemini Developer API (README: Running on Vertex AI): the
    worker and tick get GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_CLOUD_LOCATION, authenticate as
    their own service accounts (Application Default Credentials, roles/aiplatform.user on the
    project), and plan every model at the adaptive rate under its rpm in infra/quotas.json.
  EOT
  type        = bool
  default     = false
}

variable "vertex_ai_location" {
  description = "Vertex AI location of the Gemini calls when use_vertex_ai is on: global (Google's advice for Dynamic Shared Quota) or a region such as us-central1."
  type        = string
  default     = "global"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,62}$", var.vertex_ai_location))
    error_message = "vertex_ai_location must be global or a region id such as us-central1."
  }
}
