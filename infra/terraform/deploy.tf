# The identity cloudbuild.yaml deploys with (its `serviceAccount:`), instead of the project's default
# Cloud Build account (which holds the Editor role in older projects). It holds what `terraform apply`
# of this module needs and nothing else: no data access (no Firestore, object or secret-version
# reads), no right to grant any role but the few project-level ones this module grants.
#
# Cloud Build runs every step of a build as the build's one account, so the build also keeps
# third-party code from running with it where it can: `npm ci --ignore-scripts` (no install script
# runs) and images pinned by digest (cloudbuild.yaml).
#
# Bootstrap: the first `terraform apply` is run by the operator (infra/terraform/README.md, step 3),
# which creates this account; from then on the trigger deploys as it.

resource "google_service_account" "deploy" {
  project      = var.project_id
  account_id   = "fanout-deploy"
  display_name = "gemini-fanout deploy (cloudbuild.yaml: terraform apply)"
  depends_on   = [google_project_service.enabled["iam.googleapis.com"]]
}

locals {
  deploy_member = "serviceAccount:${google_service_account.deploy.email}"

  # What `terraform apply` of this module does, role by role. Resource-level grants are not possible
  # here: the resources do not exist before the first apply, and the state has to be readable first.
  deploy_roles = {
    "roles/cloudfunctions.developer"       = "create and update the four functions"
    "roles/run.admin"                      = "invoker grants on the functions' Cloud Run services"
    "roles/iam.serviceAccountAdmin"        = "the functions' and callers' service accounts, and actAs grants on fanout-tasks"
    "roles/iam.serviceAccountUser"         = "deploy functions and scheduler jobs that run or sign as those accounts"
    "roles/iam.roleAdmin"                  = "the queue pauser custom role"
    "roles/storage.admin"                  = "the data and sources buckets, their grants, the source archive, Terraform's state"
    "roles/cloudtasks.admin"               = "the queues and their grants"
    "roles/cloudscheduler.admin"           = "the tick's scheduler job"
    "roles/secretmanager.admin"            = "the two secrets (never their values: Terraform adds no version) and their grants"
    "roles/datastore.owner"                = "the Firestore database, its indexes and field settings"
    "roles/serviceusage.serviceUsageAdmin" = "enable the APIs of apis.tf"
    "roles/eventarc.admin"                 = "intake's Eventarc trigger, made with the function"
    "roles/logging.logWriter"              = "the build's own logs (a build with its own account logs to Cloud Logging only)"
  }

  # The project-level roles this module grants (iam.tf: google_project_iam_member). The deploy account
  # may grant and revoke these and no other (IAM Conditions on role grants: the
  # iam.googleapis.com/modifiedGrantsByRole attribute), so it cannot make itself or anyone an owner.
  deploy_grantable_roles = concat([
    "roles/datastore.user",
    "roles/pubsub.publisher",
    "roles/eventarc.eventReceiver",
  ], var.use_vertex_ai ? ["roles/aiplatform.user"] : []) # vertex.tf
}

resource "google_project_iam_member" "deploy" {
  for_each = local.deploy_roles

  project = var.project_id
  role    = each.key
  member  = local.deploy_member
}

resource "google_project_iam_member" "deploy_grants" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = local.deploy_member

  condition {
    title       = "fanout-deploy grants only this module's project roles"
    description = "The project-level roles infra/terraform/iam.tf grants; nothing else."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(${jsonencode(local.deploy_grantable_roles)})"
  }
}

output "deploy_service_account" {
  description = "The account cloudbuild.yaml deploys as (its serviceAccount field)."
  value       = google_service_account.deploy.email
}
