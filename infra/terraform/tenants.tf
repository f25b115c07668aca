# Tenants in the bucket: each bucket owner (var.bucket_owners, FANOUT_BUCKET_OWNERS) has one folder,
# its owner prefix: the first 32 hex digits of SHA-256 of its lowercased email, the same prefix the
# code derives (functions/core/owner-prefix.ts) and `GET /jobs` shows as `owner.prefix`. An owner may
# create and read objects only under inbox/{prefix}/ (files that become its jobs) and
# media/{prefix}/ (its media), and read only results/{prefix}/ (its results): IAM Conditions on the
# object's name, which Cloud Storage gives as projects/_/buckets/BUCKET/objects/OBJECT
# (https://cloud.google.com/storage/docs/access-control/iam#conditions,
# https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name). A list request
# names the bucket, not an object, so owners cannot list: they read their results by name
# (results/{prefix}/<the same path as the input>), and never learn another owner's object names.
# The worker's media grant (iam.tf) uses the same prefixes: it reads only media, never inbox/,
# staging/ or results/.

variable "bucket_owners" {
  description = "Emails of the bucket owners: files each puts under inbox/{owner prefix}/ become that owner's jobs (FANOUT_BUCKET_OWNERS); each gets create/read on its inbox/ and media/ folders and read on its results/ folder, nothing else of the bucket. Service accounts (*.gserviceaccount.com) are granted as serviceAccount:, others as user:."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.bucket_owners : can(regex("^[^\\s@,]+@[^\\s@,]+$", o))])
    error_message = "bucket_owners must be email addresses (the same rule as FANOUT_BUCKET_OWNERS in functions/platform/config.ts)."
  }
}

locals {
  # The name Cloud Storage gives an object of the data bucket in IAM Conditions, up to the object name.
  object_name_prefix = "projects/_/buckets/${var.bucket_name}/objects/"

  # What the worker may read: the media roots (each owner's folder is inside one) and the shared
  # prefixes (read-only samples).
  worker_media_prefixes  = toset(concat(var.media_prefixes, var.media_shared_prefixes))
  worker_media_condition = join(" || ", [for p in local.worker_media_prefixes : "resource.name.startsWith(\"${local.object_name_prefix}${p}\")"])
  # What the worker may read and write besides: answers too big for Firestore, and parked answers.
  worker_answers_condition = "resource.name.startsWith(\"${local.object_name_prefix}answers/\")"

  # Owner email (lowercased) -> its prefix and its IAM member.
  bucket_owner_prefixes = { for o in var.bucket_owners : lower(o) => substr(sha256(lower(o)), 0, 32) }
  bucket_owner_members = {
    for o in var.bucket_owners : lower(o) => endswith(lower(o), ".gserviceaccount.com") ? "serviceAccount:${lower(o)}" : "user:${lower(o)}"
  }
  # Folders each owner may create objects in, and read (its results too).
  bucket_owner_create_folders = {
    for o, p in local.bucket_owner_prefixes : o => concat(["inbox/${p}/"], [for r in var.media_prefixes : "${r}${p}/"])
  }
  bucket_owner_read_folders = {
    for o, p in local.bucket_owner_prefixes : o => concat(local.bucket_owner_create_folders[o], ["results/${p}/"])
  }
  bucket_owner_create_conditions = {
    for o, folders in local.bucket_owner_create_folders : o => join(" || ", [for f in folders : "resource.name.startsWith(\"${local.object_name_prefix}${f}\")"])
  }
  bucket_owner_read_conditions = {
    for o, folders in local.bucket_owner_read_folders : o => join(" || ", [for f in folders : "resource.name.startsWith(\"${local.object_name_prefix}${f}\")"])
  }
}

# objectCreator creates objects but cannot overwrite or delete one: an owner cannot replace a file
# that already became a job.
resource "google_storage_bucket_iam_member" "bucket_owner_create" {
  for_each = local.bucket_owner_members

  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectCreator"
  member = each.value

  condition {
    title       = "own-inbox-and-media"
    description = "Create objects only under inbox/${local.bucket_owner_prefixes[each.key]}/ and its media folders."
    expression  = local.bucket_owner_create_conditions[each.key]
  }
}

resource "google_storage_bucket_iam_member" "bucket_owner_read" {
  for_each = local.bucket_owner_members

  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title       = "own-inbox-media-results"
    description = "Read objects only under the owner's inbox/, media and results/ folders (${local.bucket_owner_prefixes[each.key]})."
    expression  = local.bucket_owner_read_conditions[each.key]
  }
}
