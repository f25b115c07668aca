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

# --- The scheduler tick: the function `batch` became `tick` (functions/tick/) ------------------------
# These continue the chains above (batch → function["batch"] → function["tick"]): Terraform follows a
# chain of moves, while two blocks moving different addresses to one address are refused.
# Every address keyed by the function moves from "batch" to "tick", so the plan shows these objects
# changing, not one set destroyed and an unrelated set created. A Cloud Function's `name` and a
# service account's `account_id` cannot change in place, though: on a deployment made before the
# rename, the plan replaces the function `batch` by `tick` (new URL; the scheduler job follows it), the
# account fanout-batch by fanout-tick, and the grants to that account, and the job fanout-batch-tick by
# fanout-tick. Chosen on purpose (the console, logs and IAM say what runs): the tick holds no state of
# its own (leases and runs are in Firestore, every duty is idempotent), so the cost is the ticks missed
# while the new function builds; a tick cut off by the old function's deletion is resumed by the next
# one from its Batch run's lease. Data, queues, the bucket and the other functions are untouched.

moved {
  from = google_cloudfunctions2_function.function["batch"]
  to   = google_cloudfunctions2_function.function["tick"]
}

moved {
  from = google_service_account.function["batch"]
  to   = google_service_account.function["tick"]
}

moved {
  from = google_cloud_run_service_iam_member.invoker["batch"]
  to   = google_cloud_run_service_iam_member.invoker["tick"]
}

moved {
  from = google_cloud_scheduler_job.batch_tick
  to   = google_cloud_scheduler_job.tick
}

moved {
  from = google_project_iam_member.firestore_user["batch"]
  to   = google_project_iam_member.firestore_user["tick"]
}

moved {
  from = google_storage_bucket_iam_member.fanout_object_user["batch"]
  to   = google_storage_bucket_iam_member.fanout_object_user["tick"]
}

moved {
  from = google_secret_manager_secret_iam_member.gemini_api_key_accessor["batch"]
  to   = google_secret_manager_secret_iam_member.gemini_api_key_accessor["tick"]
}

moved {
  from = google_secret_manager_secret_iam_member.callback_secret_accessor["batch"]
  to   = google_secret_manager_secret_iam_member.callback_secret_accessor["tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.control_enqueuer["batch"]
  to   = google_cloud_tasks_queue_iam_member.control_enqueuer["tick"]
}

moved {
  from = google_service_account_iam_member.tasks_act_as["batch"]
  to   = google_service_account_iam_member.tasks_act_as["tick"]
}


# The model queues' grants are keyed "<model>/<function>": one block per model of infra/quotas.json at
# the rename (a moved block takes no for_each). A model added since never had a "/batch" key.

moved {
  from = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-flash/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-flash/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-flash-lite/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-flash-lite/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-pro/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.5-pro/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.0-flash/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_admin["gemini-2.0-flash/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-flash/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-flash/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-flash-lite/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-flash-lite/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-pro/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.5-pro/tick"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.0-flash/batch"]
  to   = google_cloud_tasks_queue_iam_member.model_task_deleter["gemini-2.0-flash/tick"]
}
