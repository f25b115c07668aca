/**
 * The errors a batch item ends with, pure: a line of a responses file that carries an error, and
 * an item whose batch went wrong when its job asked to fail such items. Both in the `{code, status,
 * message}` shape of a realtime error, so a result line reads the same whichever path it took.
 */

/** The error recorded for an item whose batch went wrong, when the job asked to fail them. */
export function batchFallbackError(reason: string): { code: number; status: string; message: string } {
  return { code: 503, status: 'UNAVAILABLE', message: `Not answered through the Batch API: ${reason}.` };
}

/** gRPC codes → [HTTP code, status name], as Google's APIs map them (google.rpc.Code). */
const GRPC: Record<number, [number, string]> = {
  1: [499, 'CANCELLED'],
  2: [500, 'UNKNOWN'],
  3: [400, 'INVALID_ARGUMENT'],
  4: [504, 'DEADLINE_EXCEEDED'],
  5: [404, 'NOT_FOUND'],
  6: [409, 'ALREADY_EXISTS'],
  7: [403, 'PERMISSION_DENIED'],
  8: [429, 'RESOURCE_EXHAUSTED'],
  9: [400, 'FAILED_PRECONDITION'],
  10: [409, 'ABORTED'],
  11: [400, 'OUT_OF_RANGE'],
  12: [501, 'UNIMPLEMENTED'],
  13: [500, 'INTERNAL'],
  14: [503, 'UNAVAILABLE'],
  15: [500, 'DATA_LOSS'],
  16: [401, 'UNAUTHENTICATED'],
};

const HTTP_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/**
 * The error of a batch output line as a result line's `{code, status, message}`: the Batch API
 * writes a `google.rpc.Status` (a gRPC code, often no status name); realtime errors carry HTTP codes.
 */
export function batchLineError(raw: unknown): { code: number; status: string; message: string } {
  const e = (raw && typeof raw === 'object' ? raw : {}) as {
    code?: unknown;
    status?: unknown;
    message?: unknown;
  };
  const code = typeof e.code === 'number' ? e.code : 500;
  const message = typeof e.message === 'string' ? e.message : 'The batch returned an error for this request.';
  const grpc = code < 100 ? GRPC[code] : undefined;
  const http = grpc ? grpc[0] : code;
  const status = typeof e.status === 'string' ? e.status : (grpc?.[1] ?? HTTP_STATUS[http] ?? 'UNKNOWN');
  return { code: http, status, message };
}

/**
 * Whether a batch line's error (as `batchLineError` reads it) may pass by asking again: 429
 * RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE, the errors realtime would have retried (the
 * Gemini API's troubleshooting guide lists them as retryable; every other code is the request's own).
 */
export function isTransientLineError(error: { code: number }): boolean {
  return error.code === 429 || error.code === 500 || error.code === 503;
}
