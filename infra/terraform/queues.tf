# One Cloud Tasks queue per model of infra/quotas.json, sized exactly as functions/core/rate.ts
# `queueRateLimits` sizes them (the local Cloud Tasks emulator gets the same numbers from the code):
#   budget = floor(rpm × headroom)
#   burst  = max(1, min(ceil(budget / 60), 500))
#   rate   = min(500, max(budget − burst, 1) / 60), floored to 3 decimals
# A token bucket lets through at most burst + 60 × rate dispatches in any minute, so no 60-second
# window, the first minute of a job included, goes over the budget. The real service picks
# max_burst_size itself (it is output-only in the API, derived from the rate), so Terraform cannot set
# the burst: the rate alone leaves room for one burst of ceil(budget / 60).
# With several items a task (var.items_per_task = k, at most one second of the budget: k_eff), rate and
# burst count tasks of k_eff items: burst = max(1, min(ceil(ceil(budget / 60) / k_eff), 500)),
# rate = min(500, max(budget − burst × k_eff, 1) / 60 / k_eff): the same budget, 500 × k_eff items a second.
# Each queue's max_concurrent_dispatches shares the worker's max instances × concurrency
# (functions/core/queue-concurrency.ts `queueConcurrency`): the control queue a tenth (1–100), each
# model one slot plus its RPM's share of the rest, so all queues together never dispatch more at once
# than the worker serves, and a burst waits in the queues instead of meeting Cloud Run's 429s.
# The floor is taken on an exact quotient (Terraform numbers are arbitrary-precision); JavaScript's
# double arithmetic can land 0.001 lower on some inputs, never higher, and both stay within the budget.
locals {
  # Each model's rpm as the code reads it: "auto" is its ceiling (maxRpm, else Cloud Tasks' 30,000).
  model_rpm = {
    for model, quota in local.quotas.models : model => quota.rpm == "auto" ? try(quota.maxRpm, 30000) : quota.rpm
  }

  model_queues = {
    for model, quota in local.quotas.models : model => {
      id = "fanout-${replace(trimprefix(model, "models/"), "/[^a-z0-9-]/", "-")}"
      # rpm "auto" (tier limits unknown; functions/core/quotas-adaptive.ts): the queue runs at the
      # ceiling maxRpm (Cloud Tasks' 500 a second by default) and the adaptive rate plans under it.
      budget = floor(local.model_rpm[model] * local.quotas.headroom)
    }
  }

  model_items_per_task = {
    for model, q in local.model_queues : model => max(1, min(var.items_per_task, ceil(q.budget / 60)))
  }

  model_queue_limits = {
    for model, q in local.model_queues : model => {
      burst = max(1, min(ceil(ceil(q.budget / 60) / local.model_items_per_task[model]), 500))
      max_dispatches_per_second = min(
        500,
        floor(
          max(
            q.budget - max(1, min(ceil(ceil(q.budget / 60) / local.model_items_per_task[model]), 500)) * local.model_items_per_task[model],
            1,
          ) * 1000 / 60 / local.model_items_per_task[model]
        ) / 1000,
      )
    }
  }

  worker_slots       = var.worker_max_instances * var.worker_concurrency
  control_concurrent = min(100, max(1, floor(local.worker_slots / 10)))
  total_rpm          = sum([for model, rpm in local.model_rpm : rpm])
  spare_slots        = local.worker_slots - local.control_concurrent - length(local.model_queues)
  model_concurrent = {
    for model, rpm in local.model_rpm : model =>
    min(5000, 1 + floor(max(local.spare_slots, 0) * rpm / local.total_rpm))
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
        max_concurrent_dispatches = local.model_concurrent[model]
      }
    },
    {
      # Control tasks: resumable enqueuing of big jobs, handled by the worker. Not quota-bound.
      control = {
        id                        = local.control_queue_id
        max_dispatches_per_second = 100
        max_concurrent_dispatches = local.control_concurrent
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
      condition     = local.spare_slots >= 0
      error_message = "The worker serves ${local.worker_slots} requests at once (worker_max_instances × worker_concurrency), fewer than one for each model queue and the control queue's ${local.control_concurrent}: raise them."
    }
    precondition {
      condition     = !contains(keys(local.model_queues), "control")
      error_message = "infra/quotas.json has a model named \"control\": its queue would be the control queue (${local.control_queue_id}). Rename the model."
    }
  }
}
