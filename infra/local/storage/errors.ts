/**
 * Errors in the JSON API's shape: `{"error":{"code","message","errors":[{message,domain,reason,...}]}}`.
 * The official client turns that body into an `ApiError` whose `code`, `message` and
 * `errors[].reason` callers test, so the texts below follow what the real service returns.
 */
export class StorageHttpError extends Error {
  readonly statusCode: number;
  readonly reason: string;
  readonly location: { locationType: string; location: string } | undefined;
  /** Extra response headers (e.g. `Range` on a 416). */
  readonly headers: Record<string, string>;

  constructor(
    statusCode: number,
    reason: string,
    message: string,
    extra: { location?: { locationType: string; location: string }; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'StorageHttpError';
    this.statusCode = statusCode;
    this.reason = reason;
    this.location = extra.location;
    this.headers = extra.headers ?? {};
  }

  /** The JSON body the real service sends for this error. */
  toBody(): { error: { code: number; message: string; errors: Record<string, string>[] } } {
    return {
      error: {
        code: this.statusCode,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason: this.reason, ...this.location }],
      },
    };
  }
}

/** 404 for a missing object, e.g. `No such object: my-bucket/a/b.txt`. */
export function noSuchObject(bucket: string, name: string): StorageHttpError {
  return new StorageHttpError(404, 'notFound', `No such object: ${bucket}/${name}`);
}

/** 404 for a missing bucket. */
export function noSuchBucket(): StorageHttpError {
  return new StorageHttpError(404, 'notFound', 'The specified bucket does not exist.');
}

/** 412 when an `if*Match` precondition fails. */
export function conditionNotMet(): StorageHttpError {
  return new StorageHttpError(
    412,
    'conditionNotMet',
    'At least one of the pre-conditions you specified did not hold.',
    { location: { locationType: 'header', location: 'If-Match' } },
  );
}

/** 400 for a malformed request. */
export function invalid(message: string): StorageHttpError {
  return new StorageHttpError(400, 'invalid', message);
}

/** 400 for a missing required field or parameter. */
export function required(message: string): StorageHttpError {
  return new StorageHttpError(400, 'required', message);
}
