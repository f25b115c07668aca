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

# Indexes. Every query the stores (functions/platform/store/) make within one job's `items` is
# served by Firestore's automatic single-field indexes, so no composite index is declared (Firestore refuses a composite
# index that a single-field index already serves, e.g. state + __name__):
#   where(state ==) + count() (final counts of a cancelled job) -> single-field index on state
#   where(state ==) orderBy(__name__)              -> single-field index on state (ids ascending)
#   orderBy(finishedAt) orderBy(__name__)          -> single-field index on finishedAt
#   orderBy(__name__)                              -> the document-id index
#   sum(usage.promptTokens|usage.outputTokens|costUsd) over a job's items -> no filter, no index
# One query spans every job: the reconciler's `collectionGroup(items).where(lease.untilMs <)` (leases
# that ran out with no outcome). Automatic indexes have collection scope only, so lease.untilMs gets a
# collection-group index below. A second spans every job too: the reconciler's sweep for pending items
# no task will deliver, `collectionGroup(items).where(state ==).where(dueByMs <).orderBy(dueByMs)
# .orderBy(__name__)`, served by the composite collection-group index `items_overdue`. Jobs are queried by `status in` and `cancelPending ==` (collection
# scope, automatic).
# Running counts are not queries: each outcome increments one of 16 shards in jobs/{id}/counters in
# the same commit as the item, and readers sum the shards by document id.
# What is declared: the two queried fields pinned ascending at collection scope, so a later change of
# the database's automatic index settings cannot take them away, and exemptions for the large fields
# nothing queries (requests and responses are JSON strings up to ~1 MB, media a list of references;
# indexing them only costs write latency and storage) and for the two that follow input order
# (`index`, 0, 1, 2, ...; `key`, by default its index as a string and often a caller's row number):
# Firestore limits a collection whose documents carry a monotonically increasing indexed value to
# 500 writes a second (https://cloud.google.com/firestore/docs/solutions/shard-timestamp), and a
# job's items are written together, in input order. Field overrides of one collection group are
# created one after another by Firestore; the provider retries its 409 contention answers.
resource "google_firestore_field" "items_queried" {
  for_each = toset(["state", "finishedAt"])

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

resource "google_firestore_field" "items_lease_until" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "items"
  field      = "lease.untilMs"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }
}

resource "google_firestore_field" "items_not_indexed" {
  for_each = toset(["requestJson", "responseJson", "media", "index", "key"])

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

# The reconciler's sweep for pending items past their due time (functions/platform/store/item-due.ts):
# an equality on state and a range on dueByMs across every job's items, paged by (dueByMs, __name__)
# (the index adds __name__ in the direction of its last field).
resource "google_firestore_index" "items_overdue" {
  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = "items"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "dueByMs"
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
