# Addresses of earlier versions of this module, so that `terraform apply` on an existing deployment
# moves each object in the state to its new address instead of destroying it and creating a new one.
# A recreated function would drop traffic, a recreated service account would lose every grant it
# holds, and a deleted queue's name cannot be reused for about 7 days. A `from` that is not in the
# state (a new deployment, or intake never enabled) is ignored. Keep these blocks until every
# deployment has applied them; removing one later only matters to a state that still holds its `from`.

# --- Functions: one resource with for_each over local.functions (functions.tf) ---------------------
moved {
  from = google_cloudfunctions2_function.ingest
  to   = google_cloudfunctions2_function.function["ingest"]
}

moved {
  from = google_cloudfunctions2_function.worker
  to   = google_cloudfunctions2_function.function["worker"]
}

moved {
  from = google_cloudfunctions2_function.batch
  to   = google_cloudfunctions2_function.function["batch"]
}

moved {
  from = google_cloudfunctions2_function.intake[0]
  to   = google_cloudfunctions2_function.function["intake"]
}

# --- Runtime service accounts (iam.tf) ---------------------------------------------------------------
moved {
  from = google_service_account.ingest
  to   = google_service_account.function["ingest"]
}

moved {
  from = google_service_account.worker
  to   = google_service_account.function["worker"]
}

moved {
  from = google_service_account.batch
  to   = google_service_account.function["batch"]
}

moved {
  from = google_service_account.intake[0]
  to   = google_service_account.function["intake"]
}

# --- Invoker grants (functions.tf) -------------------------------------------------------------------
# ingest_invoker was keyed by member, as ingest's grants in `invoker` still are: the whole resource
# moves with its keys. A moved block cannot list keys that come from a variable, hence this shape.
moved {
  from = google_cloud_run_service_iam_member.ingest_invoker
  to   = google_cloud_run_service_iam_member.invoker
}

moved {
  from = google_cloud_run_service_iam_member.worker_invoker
  to   = google_cloud_run_service_iam_member.invoker["worker"]
}

moved {
  from = google_cloud_run_service_iam_member.batch_invoker
  to   = google_cloud_run_service_iam_member.invoker["batch"]
}

moved {
  from = google_cloud_run_service_iam_member.intake_invoker[0]
  to   = google_cloud_run_service_iam_member.invoker["intake"]
}

# --- Queues (queues.tf) ------------------------------------------------------------------------------
# The model queues keep their keys (model names).
moved {
  from = google_cloud_tasks_queue.model
  to   = google_cloud_tasks_queue.queue
}

moved {
  from = google_cloud_tasks_queue.control
  to   = google_cloud_tasks_queue.queue["control"]
}
