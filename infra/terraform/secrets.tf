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
