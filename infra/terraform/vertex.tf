# Gemini on Vertex AI (var.use_vertex_ai; README: Running on Vertex AI). Off by default: nothing here
# exists and the functions call the Gemini Developer API with GEMINI_API_KEY.

locals {
  # The SDK's own variables (functions/platform/vertex-config.ts validates them); GOOGLE_CLOUD_PROJECT
  # is in common_env already.
  vertex_env = var.use_vertex_ai ? {
    GOOGLE_GENAI_USE_VERTEXAI = "true"
    GOOGLE_CLOUD_LOCATION     = var.vertex_ai_location
  } : {}
}

resource "google_project_service" "vertex_ai" {
  count = var.use_vertex_ai ? 1 : 0

  project = var.project_id
  service = "aiplatform.googleapis.com"

  disable_on_destroy = false
}

# The functions that call Gemini (local.gemini_callers, secrets.tf) predict with Vertex AI models as
# their own service accounts. Vertex AI's roles are granted on the project: its publisher models
# have no IAM policy of their own.
resource "google_project_iam_member" "vertex_ai_user" {
  for_each = var.use_vertex_ai ? { for name in local.gemini_callers : name => local.function_members[name] } : {}

  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = each.value
}

# Batch prediction reads its input from the bucket and writes its output there
# (functions/platform/gemini/vertex-batch.ts: staging/vertex-batch/ and staging/vertex-output/) as
# Vertex AI's service agent, which Google creates in the project with the API. Granted on the bucket,
# narrowed by an IAM Condition to those two prefixes (and the bucket itself, for listing).
data "google_project" "vertex_ai" {
  count = var.use_vertex_ai ? 1 : 0

  project_id = var.project_id
}

resource "google_storage_bucket_iam_member" "vertex_ai_service_agent" {
  count = var.use_vertex_ai ? 1 : 0

  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:service-${data.google_project.vertex_ai[0].number}@gcp-sa-aiplatform.iam.gserviceaccount.com"

  condition {
    title       = "vertex-batch-staging"
    description = "Vertex AI batch prediction: its inputs and outputs under staging/vertex-"
    expression  = "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.fanout.name}/objects/staging/vertex-\")"
  }

  depends_on = [google_project_service.vertex_ai]
}
