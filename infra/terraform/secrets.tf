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
