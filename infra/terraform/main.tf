# gemini-fanout: every cloud resource of the system. Pieces live in their own files:
# apis.tf, storage.tf, firestore.tf, secrets.tf, queues.tf, iam.tf, functions.tf, scheduler.tf, and
# moved.tf (addresses of earlier versions, so an existing deployment is moved, not recreated).

locals {
  # infra/quotas.json is the single source of truth of per-model limits; the code reads the same file.
  quotas = jsondecode(file("${path.module}/../quotas.json"))

  source_dir         = coalesce(var.source_dir, "${path.module}/../..")
  source_bucket_name = coalesce(var.source_bucket_name, "${var.project_id}-fanout-sources")
  firestore_location = coalesce(var.firestore_location, var.region)

  labels = merge({ app = "gemini-fanout" }, var.labels)

  # The worker's own URL must be known before the worker exists: it is the audience the worker checks
  # in every Cloud Tasks OIDC token and the target of the tasks it creates itself, so it cannot be
  # read from the resource (a self-reference). Gen2 functions keep the 1st-gen style
  # https://REGION-PROJECT.cloudfunctions.net/NAME URL (the resource's `url`); a postcondition on the
  # worker checks that the two agree.
  function_names = {
    ingest = "ingest"
    worker = "worker"
    tick   = "tick"
    intake = "intake"
  }
  worker_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names.worker}"
}
