# The data bucket: inbox/ (JSONL files that become jobs), staging/ (Batch API input files),
# results/ (result files of bucket jobs), answers/ (answers too big for Firestore), media/ (each
# owner's media folder, and media/samples/ shared; tenants.tf). Prefixes need no resource: they exist as object names.
resource "google_storage_bucket" "fanout" {
  name     = var.bucket_name
  project  = var.project_id
  location = upper(var.region) # regional: the Eventarc trigger of intake must be in the bucket's location
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Batch input files are useless once their batch has finished or expired (48 h upstream).
  lifecycle_rule {
    condition {
      age            = var.staging_retention_days
      matches_prefix = ["staging/"]
    }
    action {
      type = "Delete"
    }
  }

  # Answers too big for Firestore and bucket jobs' results go with their jobs (RETENTION_DAYS:
  # Firestore's TTL deletes the job and its items, firestore.tf).
  lifecycle_rule {
    condition {
      age            = var.retention_days
      matches_prefix = ["answers/", "results/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled["storage.googleapis.com"]]
}

# Source archives of the functions, one object per content hash.
resource "google_storage_bucket" "sources" {
  name     = local.source_bucket_name
  project  = var.project_id
  location = upper(var.region)
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  depends_on = [google_project_service.enabled["storage.googleapis.com"]]
}

locals {
  # What the functions run: the prebuilt dist/ plus the manifest and lockfile Cloud Build installs
  # production dependencies from. Nothing else of the repository is uploaded.
  dist_files = fileset(local.source_dir, "dist/**")
  source_files = merge(
    { for f in ["package.json", "package-lock.json"] : f => file("${local.source_dir}/${f}") },
    { for f in local.dist_files : f => file("${local.source_dir}/${f}") },
  )
}

# Entries are written in sorted order with a fixed timestamp, so the same build gives the same bytes
# and the same object name: an unchanged build redeploys nothing.
data "archive_file" "functions_source" {
  type        = "zip"
  output_path = "${path.module}/.build/functions-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.key
      content  = source.value
    }
  }
}

resource "google_storage_bucket_object" "functions_source" {
  # Named by its hash: a new build is a new object, which is what makes the functions redeploy.
  name         = "functions/${data.archive_file.functions_source.output_sha256}.zip"
  bucket       = google_storage_bucket.sources.name
  source       = data.archive_file.functions_source.output_path
  content_type = "application/zip"

  lifecycle {
    precondition {
      condition     = contains(local.dist_files, "dist/functions/index.js")
      error_message = "dist/functions/index.js is missing under source_dir: run `npm ci && npm run build` at the repository root before terraform plan/apply."
    }
  }
}
