# One tick a minute, authenticated with an OIDC token of the scheduler account (the only invoker of
# tick). Cloud Scheduler's service agent mints the token; no key exists anywhere.
resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = "fanout-tick"
  description = "gemini-fanout: one scheduler tick of the tick function (resume, Batch API cycle, reconcile, exports, callbacks)"
  schedule    = "* * * * *"
  time_zone   = "Etc/UTC"
  # The Cloud Scheduler maximum for HTTP targets; tick's timeout matches it.
  attempt_deadline = "1800s"

  # The next tick is a minute away: a failed tick is not retried.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["tick"].url
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.function["tick"].url
    }
  }

  depends_on = [
    google_project_service.enabled["cloudscheduler.googleapis.com"],
    # tick's invoker grant (keyed "tick") is among these: a tick before it would be refused.
    google_cloud_run_service_iam_member.invoker,
  ]
}
