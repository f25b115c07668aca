# One Cloud Tasks queue per model of infra/quotas.json, sized exactly as functions/core/rate.ts
# `queueRateLimits` sizes them (the local Cloud Tasks emulator gets the same numbers from the code):
#   budget = floor(rpm × headroom)
#   burst  = max(1, min(ceil(budget / 60), 500))
#   rate   = min(500, max(budget − burst, 1) / 60), floored to 3 decimals
# A token bucket lets through at most burst + 60 × rate dispatches in any minute, so no 60-second
# window, the first minute of a job included, goes over the budget. The real service picks
# max_burst_size itself (it is output-only in the API, derived from the rate), so Terraform cannot set
# the burst: the rate alone leaves room for one burst of ceil(budget / 60).
# The floor is taken on an exact quotient (Terraform numbers are arbitrary-precision); JavaScript's
# double arithmetic can land 0.001 lower on some inputs, never higher, and both stay within the budget.
locals {
  model_queues = {
    for model, quota in local.quotas.models : model => {
      id = "fanout-${replace(trimprefix(model, "models/"), "/[^a-z0-9-]/", "-")}"
      # rpm "auto" (tier limits unknown; functions/core/quotas-adaptive.ts): the queue runs at the
      # ceiling maxRpm (Cloud Tasks' 500 a second by default) and the adaptive rate plans under it.
      budget = floor((quota.rpm == "auto" ? try(quota.maxRpm, 30000) : quota.rpm) * local.quotas.headroom)
    }
  }

  model_queue_limits = {
    for model, q in local.model_queues : model => {
      burst = max(1, min(ceil(q.budget / 60), 500))
      max_dispatches_per_second = min(
        500,
        floor(max(q.budget - max(1, min(ceil(q.budget / 60), 500)), 1) * 1000 / 60) / 1000,
      )
    }
  }

  # Cloud Tasks takes durations as strings of seconds.
  queue_retry = {
    max_attempts  = local.quotas.queue.maxAttempts
    min_backoff   = "${local.quotas.queue.minBackoffSeconds}s"
    max_backoff   = "${local.quotas.queue.maxBackoffSeconds}s"
    max_doublings = local.quotas.queue.maxDoublings
  }

  control_queue_id = "fanout-control" # CONTROL_QUEUE_ID in functions/core/quotas.ts

  # Every queue: one per model, keyed by model name, and the control queue, keyed "control". All share
  # queue_retry; only their rate limits differ.
  queues = merge(
    {
      for model, q in local.model_queues : model => {
        id                        = q.id
        max_dispatches_per_second = local.model_queue_limits[model].max_dispatches_per_second
        max_concurrent_dispatches = 5000 # the service's ceiling: the dispatch rate is what limits
      }
    },
    {
      # Control tasks: resumable enqueuing of big jobs, handled by the worker. Not quota-bound.
      control = {
        id                        = local.control_queue_id
        max_dispatches_per_second = 100
        max_concurrent_dispatches = 100
      }
    },
  )
}

resource "google_cloud_tasks_queue" "queue" {
  for_each = local.queues

  project  = var.project_id
  location = var.region
  name     = each.value.id

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts  = local.queue_retry.max_attempts
    min_backoff   = local.queue_retry.min_backoff
    max_backoff   = local.queue_retry.max_backoff
    max_doublings = local.queue_retry.max_doublings
  }

  # The worker pauses a model's queue when its daily quota is spent and the tick resumes it;
  # Terraform does not manage a queue's state, so an apply never undoes a pause.
  # A deleted queue's name cannot be reused for about 7 days: rename models with care.

  depends_on = [google_project_service.enabled["cloudtasks.googleapis.com"]]

  lifecycle {
    precondition {
      condition     = length(each.value.id) <= 100
      error_message = "Queue id ${each.value.id} is longer than Cloud Tasks' 100 characters: shorten the model name in infra/quotas.json."
    }
    precondition {
      condition     = !contains(keys(local.model_queues), "control")
      error_message = "infra/quotas.json has a model named \"control\": its queue would be the control queue (${local.control_queue_id}). Rename the model."
    }
  }
}
