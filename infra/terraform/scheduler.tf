# One batch tick a minute, authenticated with an OIDC token of the scheduler account (the only
# invoker of batch). Cloud Scheduler's service agent mints the token; no key exists anywhere.
resource "google_cloud_scheduler_job" "batch_tick" {
  project     = var.project_id
  region      = var.region
  name        = "fanout-batch-tick"
  description = "gemini-fanout: one batch tick (Batch API cycle, resume quota-paused queues)"
  schedule    = "* * * * *"
  time_zone   = "Etc/UTC"
  # The Cloud Scheduler maximum for HTTP targets; batch's timeout matches it.
  attempt_deadline = "1800s"

  # The next tick is a minute away: a failed tick is not retried.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["batch"].url
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.function["batch"].url
    }
  }

  depends_on = [
    google_project_service.enabled["cloudscheduler.googleapis.com"],
    # batch's invoker grant (keyed "batch") is among these: a tick before it would be refused.
    google_cloud_run_service_iam_member.invoker,
  ]
}
