import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './backoff.js';
import type { HttpTarget } from './dispatch.js';
import { invalidArgument } from './errors.js';
import {
  type AttemptMessage,
  fromDuration,
  fromTimestamp,
  type HttpRequestMessage,
  type QueueMessage,
  type TaskMessage,
  type TaskViewName,
  toDuration,
  toTimestamp,
} from './messages.js';
import { type BurstRule, deriveBurst } from './profile.js';
import type { AttemptRecord, QueueRuntime, RateLimits, TaskRecord } from './queue.js';

/** Upper bound of maxDispatchesPerSecond upstream. */
export const MAX_DISPATCHES_PER_SECOND = 500;
/** Upper bound of maxConcurrentDispatches upstream. */
export const MAX_CONCURRENT_DISPATCHES = 5000;
/** Upper bound of maxBurstSize (v2beta3 documents 500). */
export const MAX_BURST_SIZE = 500;
/** Largest task accepted by CreateTask. */
export const MAX_TASK_BYTES = 100 * 1024;

const DEFAULT_DISPATCHES_PER_SECOND = 500;
const DEFAULT_CONCURRENT_DISPATCHES = 1000;
const DEFAULT_DISPATCH_DEADLINE_MS = 10 * 60_000;
const MIN_DISPATCH_DEADLINE_MS = 15_000;
const MAX_DISPATCH_DEADLINE_MS = 30 * 60_000;

const PARENT_PATTERN = /^projects\/[A-Za-z0-9.:-]+\/locations\/[A-Za-z0-9-]+$/;
const QUEUE_ID_PATTERN = /^[A-Za-z0-9-]{1,100}$/;
const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,500}$/;

/**
 * maxBurstSize when the caller does not set one under the `'client'` burst rule (the ideal
 * profile): a default queue (500/s) reports 100 upstream, so rate/5, rounded up, at least 1. An
 * explicit value wins there; the other rules ignore it (see `deriveBurst` in profile.ts).
 */
export function defaultBurstSize(maxDispatchesPerSecond: number): number {
  return Math.min(MAX_BURST_SIZE, Math.max(1, Math.ceil(maxDispatchesPerSecond / 5)));
}

/** A queue's settings after defaults and validation. */
export interface QueueConfig {
  rateLimits: RateLimits;
  burstExplicit: boolean;
  retry: RetryPolicy;
  samplingRatio?: number;
}

/** The defaults of a queue created with nothing set. */
export function defaultQueueConfig(): QueueConfig {
  return {
    rateLimits: {
      maxDispatchesPerSecond: DEFAULT_DISPATCHES_PER_SECOND,
      maxBurstSize: defaultBurstSize(DEFAULT_DISPATCHES_PER_SECOND),
      maxConcurrentDispatches: DEFAULT_CONCURRENT_DISPATCHES,
    },
    burstExplicit: false,
    retry: { ...DEFAULT_RETRY_POLICY },
  };
}

/** Checks `projects/P/locations/L`. */
export function checkLocationName(parent: string): void {
  if (!PARENT_PATTERN.test(parent)) {
    throw invalidArgument(`Invalid resource field value in the request: parent "${parent}"`);
  }
}

/** Checks `projects/P/locations/L/queues/Q` and returns its parent. */
export function checkQueueName(name: string): string {
  const cut = name.lastIndexOf('/queues/');
  const parent = cut < 0 ? '' : name.slice(0, cut);
  const id = cut < 0 ? '' : name.slice(cut + '/queues/'.length);
  if (!PARENT_PATTERN.test(parent) || !QUEUE_ID_PATTERN.test(id)) {
    throw invalidArgument(
      `Invalid queue name "${name}": expected projects/PROJECT/locations/LOCATION/queues/QUEUE`,
    );
  }
  return parent;
}

/** Splits `…/queues/Q/tasks/T` into queue name and task id. */
export function splitTaskName(name: string): { queueName: string; taskId: string } {
  const cut = name.lastIndexOf('/tasks/');
  const queueName = cut < 0 ? '' : name.slice(0, cut);
  const taskId = cut < 0 ? '' : name.slice(cut + '/tasks/'.length);
  if (cut < 0 || !TASK_ID_PATTERN.test(taskId)) {
    throw invalidArgument(
      `Invalid task name "${name}": expected …/queues/QUEUE/tasks/TASK_ID ([A-Za-z0-9_-], ≤ 500)`,
    );
  }
  checkQueueName(queueName);
  return { queueName, taskId };
}

/** Field-mask paths accepted by UpdateQueue, in snake_case. */
const UPDATABLE_PATHS = new Set([
  'rate_limits',
  'rate_limits.max_dispatches_per_second',
  'rate_limits.max_burst_size',
  'rate_limits.max_concurrent_dispatches',
  'retry_config',
  'retry_config.max_attempts',
  'retry_config.max_retry_duration',
  'retry_config.min_backoff',
  'retry_config.max_backoff',
  'retry_config.max_doublings',
  'stackdriver_logging_config',
  'stackdriver_logging_config.sampling_ratio',
]);

function snakeCase(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Applies a Queue message to `base`. Without a mask every field is taken from the message,
 * proto3 zeros meaning "pick the default" as on creation. With a mask only the named fields
 * change, and a masked zero is taken literally (so maxDoublings 0 can be set). Under any burst
 * rule but `'client'` the message's maxBurstSize is ignored, as upstream ignores an output-only
 * field, and the burst is derived from the resulting rate.
 */
export function applyQueueMessage(
  message: QueueMessage,
  base: QueueConfig,
  maskPaths?: string[],
  burstRule: BurstRule = 'client',
): QueueConfig {
  const mask = maskPaths?.map(snakeCase);
  for (const path of mask ?? []) {
    if (!UPDATABLE_PATHS.has(path)) throw invalidArgument(`Field mask path "${path}" cannot be updated`);
  }
  const covers = (field: string): boolean =>
    mask === undefined || mask.some((path) => path === field || field.startsWith(`${path}.`));
  const literal = (field: string): boolean => mask?.includes(field) === true;
  const defaults = defaultQueueConfig();
  const next: QueueConfig =
    mask === undefined
      ? defaults
      : {
          rateLimits: { ...base.rateLimits },
          burstExplicit: base.burstExplicit,
          retry: { ...base.retry },
          ...(base.samplingRatio !== undefined ? { samplingRatio: base.samplingRatio } : {}),
        };

  const rate = message.rateLimits ?? {};
  const pick = (field: string, value: number | null | undefined, fallback: number): number | undefined => {
    if (!covers(field)) return undefined;
    if (value === null || value === undefined || (value === 0 && !literal(field))) return fallback;
    return value;
  };

  const dps = pick(
    'rate_limits.max_dispatches_per_second',
    rate.maxDispatchesPerSecond,
    defaults.rateLimits.maxDispatchesPerSecond,
  );
  if (dps !== undefined) {
    if (!(dps >= 0) || dps > MAX_DISPATCHES_PER_SECOND) {
      throw invalidArgument(
        `rate_limits.max_dispatches_per_second must be in (0, ${MAX_DISPATCHES_PER_SECOND}], got ${dps}`,
      );
    }
    next.rateLimits.maxDispatchesPerSecond = dps;
  }
  const concurrent = pick(
    'rate_limits.max_concurrent_dispatches',
    rate.maxConcurrentDispatches,
    defaults.rateLimits.maxConcurrentDispatches,
  );
  if (concurrent !== undefined) {
    if (!Number.isInteger(concurrent) || concurrent < 1 || concurrent > MAX_CONCURRENT_DISPATCHES) {
      throw invalidArgument(
        `rate_limits.max_concurrent_dispatches must be in [1, ${MAX_CONCURRENT_DISPATCHES}], got ${concurrent}`,
      );
    }
    next.rateLimits.maxConcurrentDispatches = concurrent;
  }
  const derived = deriveBurst(burstRule, next.rateLimits.maxDispatchesPerSecond);
  if (derived !== undefined) {
    next.rateLimits.maxBurstSize = derived;
    next.burstExplicit = false;
  } else {
    const burst = covers('rate_limits.max_burst_size') ? (rate.maxBurstSize ?? 0) : 0;
    if (burst < 0 || burst > MAX_BURST_SIZE) {
      throw invalidArgument(`rate_limits.max_burst_size must be in [1, ${MAX_BURST_SIZE}], got ${burst}`);
    }
    if (burst > 0) {
      next.rateLimits.maxBurstSize = burst;
      next.burstExplicit = true;
    } else if (dps !== undefined || !next.burstExplicit) {
      // Upstream re-derives the burst whenever the rate is updated without one.
      next.rateLimits.maxBurstSize = defaultBurstSize(next.rateLimits.maxDispatchesPerSecond);
      next.burstExplicit = false;
    }
  }

  const retry = message.retryConfig ?? {};
  const maxAttempts = pick('retry_config.max_attempts', retry.maxAttempts, defaults.retry.maxAttempts);
  if (maxAttempts !== undefined) {
    if (maxAttempts < -1)
      throw invalidArgument(`retry_config.max_attempts must be >= -1, got ${maxAttempts}`);
    next.retry.maxAttempts = maxAttempts;
  }
  const doublings = pick('retry_config.max_doublings', retry.maxDoublings, defaults.retry.maxDoublings);
  if (doublings !== undefined) {
    if (doublings < 0) throw invalidArgument(`retry_config.max_doublings must be >= 0, got ${doublings}`);
    next.retry.maxDoublings = doublings;
  }
  const durations: Array<[string, number | undefined, keyof RetryPolicy]> = [
    ['retry_config.max_retry_duration', fromDuration(retry.maxRetryDuration), 'maxRetryDurationMs'],
    ['retry_config.min_backoff', fromDuration(retry.minBackoff), 'minBackoffMs'],
    ['retry_config.max_backoff', fromDuration(retry.maxBackoff), 'maxBackoffMs'],
  ];
  for (const [field, value, key] of durations) {
    if (!covers(field)) continue;
    if (value !== undefined && value < 0) throw invalidArgument(`${field} must not be negative`);
    next.retry[key] = value ?? defaults.retry[key];
  }
  if (next.retry.minBackoffMs > next.retry.maxBackoffMs) {
    throw invalidArgument('retry_config.min_backoff must not exceed retry_config.max_backoff');
  }
  if (covers('stackdriver_logging_config.sampling_ratio')) {
    const ratio = message.stackdriverLoggingConfig?.samplingRatio;
    if (ratio !== null && ratio !== undefined && (ratio < 0 || ratio > 1)) {
      throw invalidArgument('stackdriver_logging_config.sampling_ratio must be in [0, 1]');
    }
    if (message.stackdriverLoggingConfig) next.samplingRatio = ratio ?? 0;
    else delete next.samplingRatio;
  }
  return next;
}

/** The Queue message for a queue. */
export function queueToMessage(queue: QueueRuntime): QueueMessage {
  return {
    name: queue.name,
    rateLimits: { ...queue.rateLimits },
    retryConfig: {
      maxAttempts: queue.retry.maxAttempts,
      maxRetryDuration: toDuration(queue.retry.maxRetryDurationMs),
      minBackoff: toDuration(queue.retry.minBackoffMs),
      maxBackoff: toDuration(queue.retry.maxBackoffMs),
      maxDoublings: queue.retry.maxDoublings,
    },
    state: queue.state,
    purgeTime: queue.purgeTimeMs === undefined ? null : toTimestamp(queue.purgeTimeMs),
    stackdriverLoggingConfig:
      queue.samplingRatio === undefined ? null : { samplingRatio: queue.samplingRatio },
  };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

function normaliseTarget(request: HttpRequestMessage): HttpTarget {
  const url = request.url ?? '';
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) {
    throw invalidArgument(`task.http_request.url must be an absolute http(s) URL, got "${url}"`);
  }
  if (url.length > 2083) throw invalidArgument('task.http_request.url is longer than 2083 characters');
  const method =
    !request.httpMethod || request.httpMethod === 'HTTP_METHOD_UNSPECIFIED' ? 'POST' : request.httpMethod;
  const body = Buffer.from(request.body ?? new Uint8Array());
  if (body.length > 0 && !BODY_METHODS.has(method)) {
    throw invalidArgument(`task.http_request.body is only allowed with POST, PUT or PATCH, not ${method}`);
  }
  const target: HttpTarget = { url, method, headers: { ...(request.headers ?? {}) }, body };
  if (request.oidcToken) {
    const email = request.oidcToken.serviceAccountEmail ?? '';
    if (email === '') throw invalidArgument('task.http_request.oidc_token.service_account_email is required');
    target.oidcToken = { serviceAccountEmail: email, audience: request.oidcToken.audience ?? '' };
  } else if (request.oauthToken) {
    const email = request.oauthToken.serviceAccountEmail ?? '';
    if (email === '')
      throw invalidArgument('task.http_request.oauth_token.service_account_email is required');
    target.oauthToken = { serviceAccountEmail: email, scope: request.oauthToken.scope ?? '' };
  }
  return target;
}

function taskBytes(target: HttpTarget): number {
  let size = Buffer.byteLength(target.url) + target.body.length;
  for (const [name, value] of Object.entries(target.headers))
    size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}

/**
 * Validates a CreateTask payload and builds the record; the caller supplies name and id. A
 * scheduleTime more than `maxScheduleAheadMs` ahead is refused with upstream's wording.
 */
export function taskFromMessage(
  message: TaskMessage,
  name: string,
  id: string,
  nowMs: number,
  maxScheduleAheadMs = Number.POSITIVE_INFINITY,
): TaskRecord {
  if (!message.httpRequest) {
    if (message.appEngineHttpRequest)
      throw invalidArgument('App Engine tasks are not supported by the local emulator');
    throw invalidArgument('task.http_request is required');
  }
  const target = normaliseTarget(message.httpRequest);
  const bytes = taskBytes(target);
  if (bytes > MAX_TASK_BYTES) {
    throw invalidArgument(`Task size ${bytes} bytes exceeds the maximum of ${MAX_TASK_BYTES} bytes`);
  }
  const deadline = fromDuration(message.dispatchDeadline) ?? DEFAULT_DISPATCH_DEADLINE_MS;
  if (deadline < MIN_DISPATCH_DEADLINE_MS || deadline > MAX_DISPATCH_DEADLINE_MS) {
    throw invalidArgument(`task.dispatch_deadline must be between 15s and 30m, got ${deadline / 1000}s`);
  }
  const requested = fromTimestamp(message.scheduleTime);
  if (requested !== undefined && requested - nowMs > maxScheduleAheadMs) {
    const hours = Math.round((maxScheduleAheadMs / 3_600_000) * 1000) / 1000;
    throw invalidArgument(
      `The Task.scheduleTime, ${new Date(requested).toISOString()}, is too far in the future. Schedule time must be no more than ${hours}h in the future.`,
    );
  }
  return {
    name,
    id,
    target,
    scheduleTimeMs: requested === undefined || requested < nowMs ? nowMs : requested,
    createTimeMs: nowMs,
    dispatchDeadlineMs: Math.trunc(deadline),
    dispatchCount: 0,
    responseCount: 0,
    executionCount: 0,
    inFlight: 0,
    version: 0,
  };
}

function attemptToMessage(attempt: AttemptRecord | undefined): AttemptMessage | null {
  if (attempt === undefined) return null;
  return {
    scheduleTime: attempt.scheduleTimeMs === undefined ? null : toTimestamp(attempt.scheduleTimeMs),
    dispatchTime: toTimestamp(attempt.dispatchTimeMs),
    responseTime: attempt.responseTimeMs === undefined ? null : toTimestamp(attempt.responseTimeMs),
    responseStatus: attempt.responseStatus ?? null,
  };
}

/** The Task message for a task; BASIC (the default view) leaves the body out. */
export function taskToMessage(task: TaskRecord, view: TaskViewName | null | undefined): TaskMessage {
  const full = view === 'FULL';
  const { target } = task;
  const httpRequest: HttpRequestMessage = {
    url: target.url,
    httpMethod: target.method as HttpRequestMessage['httpMethod'],
    headers: { ...target.headers },
    ...(full ? { body: target.body } : {}),
    ...(target.oidcToken ? { oidcToken: { ...target.oidcToken } } : {}),
    ...(target.oauthToken ? { oauthToken: { ...target.oauthToken } } : {}),
  };
  return {
    name: task.name,
    httpRequest,
    scheduleTime: toTimestamp(task.scheduleTimeMs),
    // Upstream truncates create_time to the second.
    createTime: toTimestamp(Math.floor(task.createTimeMs / 1000) * 1000),
    dispatchDeadline: toDuration(task.dispatchDeadlineMs),
    dispatchCount: task.dispatchCount,
    responseCount: task.responseCount,
    firstAttempt: attemptToMessage(task.firstAttempt),
    lastAttempt: attemptToMessage(task.lastAttempt),
    view: full ? 'FULL' : 'BASIC',
  };
}
