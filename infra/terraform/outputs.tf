output "ingest_url" {
  description = "Base URL of the jobs API (POST /jobs, GET /jobs/{id}, …). Private: send an identity token of an ingest_invokers member, e.g. curl -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" URL/jobs/ID."
  value       = google_cloudfunctions2_function.function["ingest"].url
}

output "worker_url" {
  description = "URL of the worker function: the target and OIDC audience of every task (WORKER_URL)."
  value       = google_cloudfunctions2_function.function["worker"].url
}

output "tick_url" {
  description = "URL of the tick function (the scheduler tick), called by Cloud Scheduler every minute."
  value       = google_cloudfunctions2_function.function["tick"].url
}

output "intake_function" {
  description = "Name of the intake function (null when enable_intake is false)."
  value       = var.enable_intake ? google_cloudfunctions2_function.function["intake"].name : null
}

output "bucket" {
  description = "The data bucket (FANOUT_BUCKET): drop JSONL files under inbox/, read results/."
  value       = google_storage_bucket.fanout.name
}

output "queues" {
  description = "Cloud Tasks queue of each model of infra/quotas.json, with its dispatch rate."
  value = {
    for model in keys(local.model_queues) : model => {
      name                      = google_cloud_tasks_queue.queue[model].name
      max_dispatches_per_second = local.model_queue_limits[model].max_dispatches_per_second
      # The burst the rate leaves room for; the service sets the real max_burst_size itself.
      planned_burst = local.model_queue_limits[model].burst
    }
  }
}

output "control_queue" {
  description = "The control queue (resumable enqueuing of big jobs)."
  value       = google_cloud_tasks_queue.queue["control"].name
}

output "tasks_service_account" {
  description = "TASKS_SERVICE_ACCOUNT: the identity in the OIDC token of every task."
  value       = google_service_account.tasks.email
}

output "gemini_secret" {
  description = "The Secret Manager secret of GEMINI_API_KEY, and how to add its value (Terraform never holds it)."
  value = {
    id          = google_secret_manager_secret.gemini_api_key.secret_id
    add_version = "printf '%s' \"$GEMINI_API_KEY\" | gcloud secrets versions add ${google_secret_manager_secret.gemini_api_key.secret_id} --data-file=- --project=${var.project_id}"
  }
}

output "function_source_object" {
  description = "The deployed source archive, named by its SHA-256."
  value       = "gs://${google_storage_bucket.sources.name}/${google_storage_bucket_object.functions_source.name}"
}
