# The Gemini API key. Terraform owns the secret, never its value (a value in Terraform would sit in
# the state file). The operator adds it once, before the functions are deployed:
#   printf '%s' "$GEMINI_API_KEY" | gcloud secrets versions add gemini-api-key --data-file=- --project=PROJECT
# and rotates it the same way; new function instances read version "latest".
resource "google_secret_manager_secret" "gemini_api_key" {
  project   = var.project_id
  secret_id = var.gemini_secret_id
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled["secretmanager.googleapis.com"]]
}

# The master secret of job callbacks (CALLBACK_SECRET): each owner's callback key is derived from it
# and the owner's id (HKDF, functions/platform/notify-signature.ts), and owners fetch their own with
# GET /callback-key; the secret itself is given to no one. Like the Gemini key, Terraform owns the
# secret, never its value. The operator adds a random value of at least 32 characters before the
# functions are deployed:
#   openssl rand -hex 32 | tr -d '\n' | gcloud secrets versions add fanout-callback-secret --data-file=- --project=PROJECT
# Rotation: add a new version; new instances derive every owner's key from it, so owners fetch their
# new key and their receivers accept the old and the new one for a while (verifying with each in turn).
resource "google_secret_manager_secret" "callback_secret" {
  project   = var.project_id
  secret_id = var.callback_secret_id
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled["secretmanager.googleapis.com"]]
}

locals {
  # The functions that call Gemini (functions/index.ts checks the key for these two only): the worker
  # (generateContent, countTokens, media uploads) and the tick (the Batch API). Only they bind
  # GEMINI_API_KEY and may read its secret; ingest and intake neither read nor may read it.
  gemini_callers = [for name in ["worker", "tick"] : name if contains(keys(local.deployed_functions), name)]

  # The functions that finish or cancel jobs, and so POST a job's callback (the lifecycle's notify):
  # ingest (a cancel, and GET /callback-key derives the caller's key), worker (a job's last item),
  # tick (collected batches, the reconciler). Intake only creates bucket jobs, which have no
  # callbackUrl: it neither reads nor may read the key.
  callback_senders = [for name in ["ingest", "worker", "tick"] : name if contains(keys(local.deployed_functions), name)]
}

# On the secret only, for the callback senders only.
resource "google_secret_manager_secret_iam_member" "callback_secret_accessor" {
  for_each = { for name in local.callback_senders : name => local.function_members[name] }

  project   = var.project_id
  secret_id = google_secret_manager_secret.callback_secret.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

# --- Gemini's batch webhooks (README "The Batch API path") ------------------------------------------
# Gemini can push `batch.succeeded` / `batch.failed` / … to a registered URL, signed per Standard
# Webhooks with a secret it returns once, at registration (ai.google.dev/gemini-api/docs/webhooks).
# Tick's `POST /gemini-webhook` takes them (functions/tick/webhook.ts) and collects the batch at once;
# polling stays the safety net. Off by default: turn it on once the secret has a version, e.g.
#   printf '%s' "$NEW_SIGNING_SECRET" | gcloud secrets versions add gemini-webhook-secret --data-file=- --project=PROJECT
variable "batch_webhooks" {
  description = "Whether tick binds GEMINI_WEBHOOK_SECRET, the signing secret of Gemini's batch webhooks (its secret must have a version first)."
  type        = bool
  default     = false
}

variable "gemini_webhook_secret_id" {
  description = "Id of the Secret Manager secret created for GEMINI_WEBHOOK_SECRET (the `whsec_…` signing secret Gemini returns when the webhook is registered). Terraform creates the secret, never its value."
  type        = string
  default     = "gemini-webhook-secret"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.gemini_webhook_secret_id))
    error_message = "gemini_webhook_secret_id may contain only letters, digits, '_' and '-' (at most 255 chars)."
  }
}

resource "google_secret_manager_secret" "gemini_webhook_secret" {
  count = var.batch_webhooks ? 1 : 0

  project   = var.project_id
  secret_id = var.gemini_webhook_secret_id
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled["secretmanager.googleapis.com"]]
}

# Tick only: no other function takes Gemini's webhooks.
resource "google_secret_manager_secret_iam_member" "gemini_webhook_secret_accessor" {
  count = var.batch_webhooks && contains(keys(local.deployed_functions), "tick") ? 1 : 0

  project   = var.project_id
  secret_id = one(google_secret_manager_secret.gemini_webhook_secret[*].secret_id)
  role      = "roles/secretmanager.secretAccessor"
  member    = local.function_members["tick"]
}
