import { Timestamp } from '@google-cloud/firestore';
import { type JobRecord, NO_RECONCILE } from '../../core/jobs.js';
import { encodeVersion, toDate } from './firestore.js';

/** How long jobs and their items are kept when the store is given no retention: 30 days. */
export const DEFAULT_RETENTION_MS = 30 * 86_400_000;

/**
 * `expireAt` of a new job or item document: the field Firestore's TTL policies (infra/terraform/
 * firestore.tf) delete documents by, some time after it passes (typically within a day). Counted
 * from creation, so a job and its items go together (RETENTION_DAYS).
 */
export function expireAtFor(retentionMs: number, nowMs: number = Date.now()): Timestamp {
  return Timestamp.fromMillis(nowMs + retentionMs);
}

/** A job record from its document (`jobs/{jobId}`): the one place that reads a job's fields. */
export function jobFrom(snap: FirebaseFirestore.DocumentSnapshot): JobRecord {
  const d = snap.data() ?? {};
  return {
    id: snap.id,
    model: d.model,
    mode: d.mode,
    total: d.total,
    source: d.source,
    ...(d.callbackUrl ? { callbackUrl: d.callbackUrl } : {}),
    ...(typeof d.owner === 'string' ? { owner: d.owner } : {}),
    counterShards: d.counterShards ?? 16,
    status: d.status,
    createdAt: toDate(d.createdAt) ?? new Date(0),
    startedAt: toDate(d.startedAt),
    finishedAt: toDate(d.finishedAt),
    enqueuedThrough: d.enqueuedThrough ?? 0,
    enqueueDueMs: d.enqueueDueMs ?? 0,
    notice: d.notice ?? null,
    final: d.final ?? null,
    cancelPending: d.cancelPending === true,
    reconciled: { ...NO_RECONCILE, ...(d.reconciled ?? {}) },
    exportPending: d.exportPending === true,
    ...(typeof d.tokenRatio === 'number' ? { tokenRatio: d.tokenRatio } : {}),
    ...(typeof d.exportLeaseUntilMs === 'number' ? { exportLeaseUntilMs: d.exportLeaseUntilMs } : {}),
    ...(d.paths ? { paths: d.paths } : {}),
    ...(d.onBatchFailure ? { onBatchFailure: d.onBatchFailure } : {}),
    ...(typeof d.deadlineMs === 'number' ? { deadlineMs: d.deadlineMs } : {}),
    ...(d.priority === true ? { priority: true } : {}),
    ...(d.cache === false ? { cache: false as const } : {}),
    ...(d.staged ? { staged: d.staged } : {}),
    ...(d.output ? { output: d.output } : {}),
    ...(d.extraCounters ? { extraCounters: d.extraCounters } : {}),
    ...(typeof d.retryOf === 'string' ? { retryOf: d.retryOf } : {}),
    ...(Array.isArray(d.retries) ? { retries: d.retries } : {}),
    ...(typeof d.maxCostUsd === 'number' ? { maxCostUsd: d.maxCostUsd } : {}),
    ...(d.budgetStopped === true ? { budgetStopped: true } : {}),
    // Stored as JSON: a step's config may hold what Firestore refuses as fields (nested arrays).
    ...(typeof d.pipelineJson === 'string' ? { pipeline: JSON.parse(d.pipelineJson) } : {}),
    ...(d.unitOf ? { unitOf: d.unitOf } : {}),
    version: encodeVersion(snap.updateTime!),
  };
}
