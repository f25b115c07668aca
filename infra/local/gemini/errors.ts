/**
 * The error bodies of the Gemini Developer API (google.rpc.Status as JSON), built in one place so
 * every route answers with the shape, code and wording the real service uses.
 */

/** The JSON body of an error answer: `{"error": {code, message, status, details?}}`. */
export interface ApiErrorBody {
  error: { code: number; message: string; status: string; details?: unknown[] };
}

/** An error a route throws to answer with `httpStatus` and a Google-style JSON error body. */
export class StandInHttpError extends Error {
  readonly httpStatus: number;
  readonly body: ApiErrorBody;
  readonly headers: Record<string, string>;

  constructor(httpStatus: number, status: string, message: string, details?: unknown[], headers = {}) {
    super(message);
    this.name = 'StandInHttpError';
    this.httpStatus = httpStatus;
    this.body = { error: { code: httpStatus, message, status, ...(details ? { details } : {}) } };
    this.headers = headers;
  }
}

/** 400 INVALID_ARGUMENT, the answer to anything malformed in a request. */
export function invalidArgument(message: string): StandInHttpError {
  return new StandInHttpError(400, 'INVALID_ARGUMENT', message);
}

/** 400 for a body that is not JSON; the real service quotes its parser's complaint. */
export function invalidJson(detail: string): StandInHttpError {
  return invalidArgument(`Invalid JSON payload received. ${detail}`);
}

/** 404 for a model that does not exist (or does not support `method`). */
export function modelNotFound(model: string, apiVersion: string, method: string): StandInHttpError {
  return new StandInHttpError(
    404,
    'NOT_FOUND',
    `models/${model} is not found for API version ${apiVersion}, or is not supported for ${method}. ` +
      'Call ListModels to see the list of available models and their supported methods.',
  );
}

/**
 * The real Files API answers an unknown (or foreign) file with 403, not 404, so a caller cannot
 * probe which file names exist.
 */
export function fileNotFound(fileId: string): StandInHttpError {
  return new StandInHttpError(
    403,
    'PERMISSION_DENIED',
    `You do not have permission to access the File ${fileId} or it may not exist.`,
  );
}

/** 404 NOT_FOUND with Google's generic wording, for batches and other named resources. */
export function entityNotFound(): StandInHttpError {
  return new StandInHttpError(404, 'NOT_FOUND', 'Requested entity was not found.');
}

/** 500 INTERNAL as the real service words it. */
export function internalError(): StandInHttpError {
  return new StandInHttpError(
    500,
    'INTERNAL',
    'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  );
}

/** 503 UNAVAILABLE, the "model is overloaded" answer. */
export function unavailableError(): StandInHttpError {
  return new StandInHttpError(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
}

/** 504 DEADLINE_EXCEEDED, sent when a held request's time is up. */
export function deadlineExceeded(): StandInHttpError {
  return new StandInHttpError(504, 'DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.');
}

/** 403 for a request without an API key (`x-goog-api-key` header or `key` query parameter). */
export function missingApiKey(): StandInHttpError {
  return new StandInHttpError(
    403,
    'PERMISSION_DENIED',
    "Method doesn't allow unregistered callers (callers without established identity). " +
      'Please use API Key or other form of API consumer identity to call this API.',
  );
}

/**
 * 400 INVALID_ARGUMENT for a request body over the API's size limit, in the Google front end's
 * wording ("Request payload size exceeds the limit: N bytes.").
 */
export function requestTooLarge(limit: number): StandInHttpError {
  return invalidArgument(`Request payload size exceeds the limit: ${limit} bytes.`);
}
