# Identities. One service account per function, one Cloud Tasks signs its OIDC tokens as, one Cloud
# Scheduler signs as, and one Eventarc delivers intake's events as. Every grant is on the resource it
# is about (queue, bucket, secret, service account, Cloud Run service), except where the API has no
# narrower grant: those few project-level grants say why.

# One runtime account per deployed function of local.functions (functions.tf): fanout-ingest,
# fanout-worker, fanout-tick, fanout-intake.
resource "google_service_account" "function" {
  for_each = local.deployed_functions

  project      = var.project_id
  account_id   = "fanout-${each.key}"
  display_name = each.value.account_name
  depends_on   = [google_project_service.enabled["iam.googleapis.com"]]
}

# TASKS_SERVICE_ACCOUNT: the identity in the OIDC token of every task. It holds no data access; its
# only right is invoking the worker, and the worker accepts no other caller.
resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "fanout-tasks"
  display_name = "gemini-fanout Cloud Tasks OIDC identity (calls the worker)"
  depends_on   = [google_project_service.enabled["iam.googleapis.com"]]
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "fanout-scheduler"
  display_name = "gemini-fanout Cloud Scheduler OIDC identity (calls tick)"
  depends_on   = [google_project_service.enabled["iam.googleapis.com"]]
}

# Eventarc's identity for intake: may receive events and invoke intake, nothing else. Kept apart from
# intake's runtime account so the function cannot invoke itself.
resource "google_service_account" "intake_trigger" {
  count = var.enable_intake ? 1 : 0

  project      = var.project_id
  account_id   = "fanout-intake-trigger"
  display_name = "gemini-fanout Eventarc trigger identity (calls intake)"
  depends_on   = [google_project_service.enabled["iam.googleapis.com"]]
}

locals {
  # Runtime identities of the deployed functions, by function.
  function_members = { for name, account in google_service_account.function : name => "serviceAccount:${account.email}" }

  # Who creates tasks on the control queue: ingest and intake start a job's enqueuing there, the
  # worker hands a long enqueuing over to a fresh control task, and the tick's reconciler
  # restarts an enqueuing that stalled (functions/lifecycle/reconcile.ts).
  control_enqueuers = { for k, m in local.function_members : k => m if contains(["ingest", "worker", "intake", "tick"], k) }
}

# --- Firestore ---------------------------------------------------------------------------------
# roles/datastore.user has no resource-level grant: Firestore IAM is project-level only (IAM
# conditions on the database name are the only way to narrow it; this project holds one database).
resource "google_project_iam_member" "firestore_user" {
  for_each = local.function_members

  project = var.project_id
  role    = "roles/datastore.user"
  member  = each.value
}

# --- Cloud Storage: on the data bucket only -------------------------------------------------------
# objectUser = read, create, overwrite and delete objects, no bucket or IAM changes. Intake (results
# of a refused file) and tick (results/, cleaning staging/) rewrite objects, which needs delete.
resource "google_storage_bucket_iam_member" "fanout_object_user" {
  for_each = { for k, m in local.function_members : k => m if !contains(["ingest", "worker"], k) }

  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectUser"
  member = each.value
}

# The worker sends what it reads to Gemini, so it reads only what may go there: the media prefixes
# (tenants.tf local.worker_media_condition; the code keeps each job to its owner's folder), and
# answers/ (answers too big for Firestore and parked ones, which it also writes and deletes).
# Never inbox/, staging/ or results/: IAM Conditions on the object name.
resource "google_storage_bucket_iam_member" "worker_answers" {
  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectUser"
  member = local.function_members.worker

  condition {
    title       = "answers-only"
    description = "Read, write and delete objects under answers/ only."
    expression  = local.worker_answers_condition
  }
}

resource "google_storage_bucket_iam_member" "worker_media" {
  bucket = google_storage_bucket.fanout.name
  role   = "roles/storage.objectViewer"
  member = local.function_members.worker

  condition {
    title       = "media-only"
    description = "Read objects under the media roots and shared media prefixes only."
    expression  = local.worker_media_condition
  }
}

# Ingest only creates new objects (a batch job's staged set, under a fresh id) and reads answers
# stored in the bucket for results calls: no overwrite, no delete.
resource "google_storage_bucket_iam_member" "ingest_object_creator" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])

  bucket = google_storage_bucket.fanout.name
  role   = each.value
  member = local.function_members.ingest
}

# --- Secret Manager: on the secret only -----------------------------------------------------------
# The functions that call Gemini only (local.gemini_callers, secrets.tf): ingest and intake never do,
# and their configuration does not ask for the key.
resource "google_secret_manager_secret_iam_member" "gemini_api_key_accessor" {
  for_each = { for name in local.gemini_callers : name => local.function_members[name] }

  project   = var.project_id
  secret_id = google_secret_manager_secret.gemini_api_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

# --- Cloud Tasks: on the queues only ---------------------------------------------------------------
resource "google_cloud_tasks_queue_iam_member" "control_enqueuer" {
  for_each = local.control_enqueuers

  project  = var.project_id
  location = google_cloud_tasks_queue.queue["control"].location
  name     = google_cloud_tasks_queue.queue["control"].name
  role     = "roles/cloudtasks.enqueuer"
  member   = each.value
}

# The worker creates the item tasks of a job on its model's queue.
resource "google_cloud_tasks_queue_iam_member" "model_enqueuer_worker" {
  for_each = local.model_queues

  project  = var.project_id
  location = google_cloud_tasks_queue.queue[each.key].location
  name     = google_cloud_tasks_queue.queue[each.key].name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.function_members.worker
}

# The worker pauses a model's queue on a per-day 429; the tick resumes it after the reset.
# That is all either does to a queue beyond filling it: roles/cloudtasks.queueAdmin would also let
# them purge, delete and reconfigure it, so a custom role holds exactly pause and resume.
resource "google_project_iam_custom_role" "queue_pauser" {
  project     = var.project_id
  role_id     = "fanoutQueuePauser"
  title       = "gemini-fanout queue pauser"
  description = "Pause and resume a Cloud Tasks queue; granted on the model queues only."
  permissions = ["cloudtasks.queues.get", "cloudtasks.queues.pause", "cloudtasks.queues.resume"]
}

resource "google_cloud_tasks_queue_iam_member" "model_admin" {
  for_each = {
    for pair in setproduct(keys(local.model_queues), ["worker", "tick"]) :
    "${pair[0]}/${pair[1]}" => { model = pair[0], fn = pair[1] }
  }

  project  = var.project_id
  location = google_cloud_tasks_queue.queue[each.value.model].location
  name     = google_cloud_tasks_queue.queue[each.value.model].name
  role     = google_project_iam_custom_role.queue_pauser.id
  member   = local.function_members[each.value.fn]
}

# A cancel (ingest, or the reconciler in tick) deletes the tasks of the items it ended, so the queue
# does not spend the model's dispatch rate on deliveries that would only end as cancelled.
resource "google_cloud_tasks_queue_iam_member" "model_task_deleter" {
  for_each = {
    for pair in setproduct(keys(local.model_queues), ["ingest", "tick"]) :
    "${pair[0]}/${pair[1]}" => { model = pair[0], fn = pair[1] }
  }

  project  = var.project_id
  location = google_cloud_tasks_queue.queue[each.value.model].location
  name     = google_cloud_tasks_queue.queue[each.value.model].name
  role     = "roles/cloudtasks.taskDeleter"
  member   = local.function_members[each.value.fn]
}

# Creating a task whose OIDC token is minted as the tasks account requires actAs on that account.
resource "google_service_account_iam_member" "tasks_act_as" {
  for_each = local.control_enqueuers

  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}

# --- Eventarc (intake) -------------------------------------------------------------------------------
# Cloud Storage publishes its events to the Pub/Sub topic Eventarc creates for the trigger; the topic
# does not exist before the trigger, so the Cloud Storage service agent gets the publisher role on the
# project, as Eventarc's documentation prescribes.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  count = var.enable_intake ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Receiving events is granted on the project: Eventarc has no resource-level grant for it.
resource "google_project_iam_member" "intake_trigger_event_receiver" {
  count = var.enable_intake ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.intake_trigger[0].email}"
}

# Projects created before April 2021 also need the Pub/Sub service agent to hold
# roles/iam.serviceAccountTokenCreator for push authentication; newer projects have it by default.
