import type { ErrorBody } from '../api/jobs.js';

/**
 * The error family every trigger maps to a response. `statusCode` is the HTTP status a client sees,
 * `status` the canonical Google status name used in `{error:{code, message, status}}` bodies,
 * `retryable` tells a trigger whether to ask its caller (Cloud Tasks, Eventarc) for another attempt.
 */
export class AppError extends Error {
  readonly statusCode: number;
  readonly status: string;
  readonly retryable: boolean;
  readonly details?: unknown;
  /** Seconds a caller should wait before trying again (sent as `Retry-After`). */
  readonly retryAfterSeconds?: number;

  constructor(
    message: string,
    options: {
      statusCode: number;
      status: string;
      retryable?: boolean;
      details?: unknown;
      retryAfterSeconds?: number;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.statusCode = options.statusCode;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The request is malformed; `details` lists each bad field as `{field, message}`. */
export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super(message, { statusCode: 400, status: 'INVALID_ARGUMENT', details });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, details?: unknown) {
    super(message, { statusCode: 413, status: 'INVALID_ARGUMENT', details });
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super(message, { statusCode: 415, status: 'INVALID_ARGUMENT' });
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super(message, { statusCode: 404, status: 'NOT_FOUND' });
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: unknown) {
    super(message, { statusCode: 409, status: 'FAILED_PRECONDITION', details });
  }
}

export class UnauthenticatedError extends AppError {
  constructor(message: string, cause?: unknown) {
    super(message, { statusCode: 401, status: 'UNAUTHENTICATED', cause });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(message, { statusCode: 403, status: 'PERMISSION_DENIED' });
  }
}

export class MethodNotAllowedError extends AppError {
  constructor(message: string) {
    super(message, { statusCode: 405, status: 'UNIMPLEMENTED' });
  }
}

export interface HttpErrorResponse {
  statusCode: number;
  headers: Record<string, string>;
  /** The API contract's shape: never a stack trace, never an internal message for unknown errors. */
  body: ErrorBody;
}

/** Maps any thrown value to an HTTP response. Unknown errors become a generic 500. */
export function toHttpError(err: unknown): HttpErrorResponse {
  if (err instanceof AppError) {
    const headers: Record<string, string> = {};
    if (err.retryAfterSeconds !== undefined)
      headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterSeconds)));
    const error: ErrorBody['error'] = { code: err.statusCode, status: err.status, message: err.message };
    if (err.details !== undefined) error.details = err.details;
    return { statusCode: err.statusCode, headers, body: { error } };
  }
  return {
    statusCode: 500,
    headers: {},
    body: { error: { code: 500, status: 'INTERNAL', message: 'Internal error; see the service logs.' } },
  };
}
