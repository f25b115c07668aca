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
