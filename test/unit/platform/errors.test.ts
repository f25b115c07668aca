import { describe, expect, it } from 'vitest';
import {
  AppError,
  ConflictError,
  ForbiddenError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  toHttpError,
  UnauthenticatedError,
  ValidationError,
} from '../../../functions/platform/errors.js';

describe('toHttpError', () => {
  it.each([
    [new ValidationError('bad body'), 400, 'INVALID_ARGUMENT'],
    [new PayloadTooLargeError('too big'), 413, 'INVALID_ARGUMENT'],
    [new NotFoundError('no job'), 404, 'NOT_FOUND'],
    [new ConflictError('busy'), 409, 'FAILED_PRECONDITION'],
    [new UnauthenticatedError('who are you'), 401, 'UNAUTHENTICATED'],
    [new ForbiddenError('not you'), 403, 'PERMISSION_DENIED'],
    [new MethodNotAllowedError('GET only'), 405, 'UNIMPLEMENTED'],
  ])('maps %s to its status and body', (err, statusCode, status) => {
    const mapped = toHttpError(err);

    expect(mapped.statusCode).toBe(statusCode);
    expect(mapped.body).toEqual({ error: { code: statusCode, status, message: err.message } });
  });

  it('carries details when there are some', () => {
    const details = [{ field: 'prompts[0]', message: 'must not be empty' }];

    const mapped = toHttpError(new ValidationError('Invalid job', details));

    expect(mapped.body.error.details).toEqual(details);
  });

  it('sends retry-after in whole seconds, rounded up and at least 1', () => {
    const unavailable = (retryAfterSeconds?: number) =>
      new AppError('wait', { statusCode: 503, status: 'UNAVAILABLE', retryable: true, retryAfterSeconds });

    expect(toHttpError(unavailable(12)).headers).toEqual({ 'retry-after': '12' });
    expect(toHttpError(unavailable(2.1)).headers).toEqual({ 'retry-after': '3' });
    expect(toHttpError(unavailable(0.2)).headers).toEqual({ 'retry-after': '1' });
    expect(toHttpError(unavailable(0)).headers).toEqual({ 'retry-after': '1' });
    expect(toHttpError(unavailable()).headers).toEqual({});
    expect(toHttpError(new NotFoundError('x')).headers).toEqual({});
  });

  it('marks client mistakes as not retryable', () => {
    expect(new ValidationError('bad').retryable).toBe(false);
  });

  it('keeps the cause and the subclass name', () => {
    const cause = new Error('socket hang up');

    const err = new UnauthenticatedError('who are you', cause);

    expect(err.cause).toBe(cause);
    expect(err.name).toBe('UnauthenticatedError');
    expect(err).toBeInstanceOf(AppError);
  });

  it('turns an unknown error into a generic 500 without its message or stack', () => {
    const err = new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2');

    const mapped = toHttpError(err);
    const text = JSON.stringify(mapped);

    expect(mapped.statusCode).toBe(500);
    expect(mapped.headers).toEqual({});
    expect(mapped.body).toEqual({
      error: { code: 500, status: 'INTERNAL', message: 'Internal error; see the service logs.' },
    });
    expect(text).not.toContain('ECONNREFUSED');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('at ');
  });

  it('turns thrown non-errors into a generic 500 too', () => {
    for (const thrown of ['boom', undefined, null, 42, { message: 'secret' }]) {
      const mapped = toHttpError(thrown);
      expect(mapped.statusCode).toBe(500);
      expect(JSON.stringify(mapped)).not.toContain('secret');
    }
  });
});
