# The jobs database: jobs/{jobId} (with items/ and counters/), idempotencyKeys/{keyId},
# ledgers/{model} (with jobs/), quotaPauses/{model}, reconciler/cursor (where the reconciler's
# sweeps go on): one store each in functions/platform/store/.
resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = "(default)"
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  # `terraform destroy` forgets the database instead of deleting every job with it.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled["firestore.googleapis.com"]]
}

# Indexes. Within one job's `items` the stores (functions/platform/store/) query by state, served
# by Firestore's automatic single-field index (Firestore refuses a composite index that a
# single-field index already serves, e.g. state + __name__), and by finish time:
#   where(state ==) + count() (final counts of a cancelled job) -> single-field index on state
#   where(state ==) orderBy(__name__)              -> single-field index on state (ids ascending)
#   where(sweepShard in) orderBy(finishedAt) orderBy(__name__) -> composite `items_finished` below
#   orderBy(__name__)                              -> the document-id index
#   sum(usage.promptTokens|usage.outputTokens|costUsd) over a job's items -> no filter, no index
# Two queries span every job, both the reconciler's: leases that ran out with no outcome,
# `collectionGroup(items).where(sweepShard in all).where(lease.untilMs <).orderBy(lease.untilMs)`,
# and pending items no task will deliver, `collectionGroup(items).where(sweepShard in all)
# .where(state ==).where(dueByMs <).orderBy(dueByMs).orderBy(__name__)`: composite collection-group
# indexes `items_leases_expiring` and `items_overdue` below. Both values grow with time as deliveries
# write them, at the rate of the whole system, and Firestore limits an index of a monotonically
# increasing value to 500 writes a second (https://cloud.google.com/firestore/docs/solutions/shard-timestamp):
# so every item carries `sweepShard` (its index modulo 16, functions/platform/store/item-codec.ts),
# each index on such a value starts with it, and the queries ask for every shard with one `in`
# (8,000 writes a second). Jobs are queried by `status in` and `cancelPending ==` (collection
# scope, automatic).
# Running counts are not queries: each outcome increments one of 16 shards in jobs/{id}/counters in
# the same commit as the item, and readers sum the shards by document id.
# What is declared: `state` pinned ascending at collection scope, so a later change of the
# database's automatic index settings cannot take it away, and exemptions for the large fields
# nothing queries (requests and responses are JSON strings up to ~1 MB, media a list of references;
# indexing them only costs write latency and storage), for the two that follow input order
# (`index`, 0, 1, 2, ...; `key`, by default its index as a string and often a caller's row number),
# since a job's items are written together, in input order, and for the values that grow with time
# and are queried only through the composite indexes, or not at all (`lease.untilMs`, `dueByMs`,
# `plannedMs`, `finishedAt`, and `sweepShard` itself, as the sharding guide asks). Field overrides of one
# collection group are created one after another by Firestore; the provider retries its 409
# contention answers.
resource "google_firestore_field" "items_queried" {
  for_each = toset(["state"])

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "items"
  field      = each.value

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }
}

resource "google_firestore_field" "items_not_indexed" {
  for_each = toset([
    "requestJson", "responseJson", "media", "index", "key",
    "lease.untilMs", "dueByMs", "plannedMs", "finishedAt", "sweepShard",
  ])

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "items"
  field      = each.value

  # An empty block turns off every single-field index of the field.
  index_config {}
}

# Expiry: every job and item document carries `expireAt` (creation + RETENTION_DAYS, written by the
# stores: functions/platform/store/job-codec.ts expireAtFor), and a TTL policy on it per collection
# group deletes documents once it has passed, typically within a day
# (https://firebase.google.com/docs/firestore/ttl). The field is exempt from indexing (a timestamp
# that only grows makes a hotspot, and nothing queries it). answers/ and results/ in the bucket go
# after the same number of days (storage.tf).
resource "google_firestore_field" "expire_at" {
  for_each = toset(["jobs", "items"])

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = each.value
  field      = "expireAt"

  ttl_config {}
  index_config {}
}

# GET /jobs lists a caller's jobs newest first: where(owner ==) orderBy(createdAt desc), paged with
# a document cursor (which adds __name__ in the same direction, served by the same index). Listing
# every job (admins) orders by createdAt alone: the automatic single-field index.
resource "google_firestore_index" "jobs_by_owner" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "jobs"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }
  fields {
    field_path = "createdAt"
    order      = "DESCENDING"
  }
}

# A job's results as they complete (functions/platform/store/item-reads.ts listFinished, the event
# stream): every sweep shard, in finish order, paged by (finishedAt, __name__). One job's outcomes
# arrive at its whole rate (500 a second at 30,000 RPM, more with several items a task), so the
# finish time is sharded like the sweeps' values.
resource "google_firestore_index" "items_finished" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "items"

  fields {
    field_path = "sweepShard"
    order      = "ASCENDING"
  }
  fields {
    field_path = "finishedAt"
    order      = "ASCENDING"
  }
}

# The reconciler's sweep for pending items past their due time (functions/platform/store/item-due.ts):
# every sweep shard, an equality on state and a range on dueByMs across every job's items, paged by
# (dueByMs, __name__) (the index adds __name__ in the direction of its last field).
resource "google_firestore_index" "items_overdue" {
  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = "items"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "sweepShard"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "dueByMs"
    order      = "ASCENDING"
  }
}

# The reconciler's sweep for leases that ran out (functions/platform/store/items.ts
# listExpiredLeases): every sweep shard, a range on lease.untilMs across every job's items.
resource "google_firestore_index" "items_leases_expiring" {
  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = "items"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "sweepShard"
    order      = "ASCENDING"
  }
  fields {
    field_path = "lease.untilMs"
    order      = "ASCENDING"
  }
}

# The response cache (functions/platform/store/response-cache.ts, worker/response-cache.ts):
# responseCache/{ownerHash_requestHash}, one document per request an owner paid for, read by id only.
# `expireAt` is the entry's end (creation + RESPONSE_CACHE_TTL_HOURS); the TTL policy deletes it
# some time after (typically within a day), and reads treat an entry past it as a miss. Neither it
# nor the inline response is queried: both are exempt from indexing.
resource "google_firestore_field" "response_cache_expire_at" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "responseCache"
  field      = "expireAt"

  ttl_config {}
  index_config {}
}

resource "google_firestore_field" "response_cache_not_indexed" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "responseCache"
  field      = "responseJson"

  index_config {}
}
