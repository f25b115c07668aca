/**
 * The shapes of the v2 messages as `protos.ts` decodes them (camelCase, enums as names,
 * int64 as numbers, unset messages null). Only the fields the emulator reads or writes.
 */

/** google.protobuf.Timestamp. */
export interface TimestampMessage {
  seconds?: number | string | null;
  nanos?: number | null;
}

/** google.protobuf.Duration. */
export interface DurationMessage {
  seconds?: number | string | null;
  nanos?: number | null;
}

/** google.rpc.Status. */
export interface StatusMessage {
  code: number;
  message: string;
}

export interface RateLimitsMessage {
  maxDispatchesPerSecond?: number | null;
  maxBurstSize?: number | null;
  maxConcurrentDispatches?: number | null;
}

export interface RetryConfigMessage {
  maxAttempts?: number | null;
  maxRetryDuration?: DurationMessage | null;
  minBackoff?: DurationMessage | null;
  maxBackoff?: DurationMessage | null;
  maxDoublings?: number | null;
}

export type QueueStateName = 'STATE_UNSPECIFIED' | 'RUNNING' | 'PAUSED' | 'DISABLED';

export interface QueueMessage {
  name?: string | null;
  rateLimits?: RateLimitsMessage | null;
  retryConfig?: RetryConfigMessage | null;
  state?: QueueStateName | null;
  purgeTime?: TimestampMessage | null;
  stackdriverLoggingConfig?: { samplingRatio?: number | null } | null;
}

export type HttpMethodName =
  | 'HTTP_METHOD_UNSPECIFIED'
  | 'POST'
  | 'GET'
  | 'HEAD'
  | 'PUT'
  | 'DELETE'
  | 'PATCH'
  | 'OPTIONS';

export interface OidcTokenMessage {
  serviceAccountEmail?: string | null;
  audience?: string | null;
}

export interface OAuthTokenMessage {
  serviceAccountEmail?: string | null;
  scope?: string | null;
}

export interface HttpRequestMessage {
  url?: string | null;
  httpMethod?: HttpMethodName | null;
  headers?: Record<string, string> | null;
  body?: Uint8Array | null;
  oidcToken?: OidcTokenMessage | null;
  oauthToken?: OAuthTokenMessage | null;
}

export interface AttemptMessage {
  scheduleTime?: TimestampMessage | null;
  dispatchTime?: TimestampMessage | null;
  responseTime?: TimestampMessage | null;
  responseStatus?: StatusMessage | null;
}

export type TaskViewName = 'VIEW_UNSPECIFIED' | 'BASIC' | 'FULL';

export interface TaskMessage {
  name?: string | null;
  httpRequest?: HttpRequestMessage | null;
  appEngineHttpRequest?: unknown;
  scheduleTime?: TimestampMessage | null;
  createTime?: TimestampMessage | null;
  dispatchDeadline?: DurationMessage | null;
  dispatchCount?: number | null;
  responseCount?: number | null;
  firstAttempt?: AttemptMessage | null;
  lastAttempt?: AttemptMessage | null;
  view?: TaskViewName | null;
}

export interface NameRequest {
  name: string;
}

export interface ListQueuesRequest {
  parent: string;
  filter?: string | null;
  pageSize?: number | null;
  pageToken?: string | null;
}

export interface ListQueuesResponse {
  queues: QueueMessage[];
  nextPageToken: string;
}

export interface CreateQueueRequest {
  parent: string;
  queue?: QueueMessage | null;
}

export interface UpdateQueueRequest {
  queue?: QueueMessage | null;
  updateMask?: { paths?: string[] | null } | null;
}

export interface ListTasksRequest {
  parent: string;
  responseView?: TaskViewName | null;
  pageSize?: number | null;
  pageToken?: string | null;
}

export interface ListTasksResponse {
  tasks: TaskMessage[];
  nextPageToken: string;
}

export interface GetTaskRequest {
  name: string;
  responseView?: TaskViewName | null;
}

export interface CreateTaskRequest {
  parent: string;
  task?: TaskMessage | null;
  responseView?: TaskViewName | null;
}

/** Epoch milliseconds (fractional: the service keeps microseconds) → Timestamp. */
export function toTimestamp(ms: number): TimestampMessage {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round(((ms - seconds * 1000) * 1e6) / 1000) * 1000;
  return { seconds, nanos: Math.min(nanos, 999_999_000) };
}

/** Timestamp → epoch milliseconds, truncated to the microsecond as the service does. */
export function fromTimestamp(ts: TimestampMessage | null | undefined): number | undefined {
  if (ts === null || ts === undefined) return undefined;
  const micros = Math.trunc(Number(ts.nanos ?? 0) / 1000);
  return Number(ts.seconds ?? 0) * 1000 + micros / 1000;
}

/** Milliseconds → Duration. */
export function toDuration(ms: number): DurationMessage {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Duration → milliseconds; undefined when the field was not set. */
export function fromDuration(d: DurationMessage | null | undefined): number | undefined {
  if (d === null || d === undefined) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
}
