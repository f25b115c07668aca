import type { Request } from '@google-cloud/functions-framework';
import { describe, expect, it } from 'vitest';
import { checkWrite } from '../../../functions/ingest/front-door.js';
import { createStreamSlots, TooManyStreamsError } from '../../../functions/ingest/stream-slots.js';
import {
  ForbiddenError,
  toHttpError,
  UnsupportedMediaTypeError,
} from '../../../functions/platform/errors.js';

/** A POST to ingest at 127.0.0.1:8580 with these headers (lowercase names). */
function post(headers: Record<string, string>): Request {
  const all: Record<string, string> = { host: '127.0.0.1:8580', ...headers };
  return {
    method: 'POST',
    path: '/jobs',
    header: (name: string) => all[name.toLowerCase()],
  } as unknown as Request;
}

function thrown(f: () => void): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('what a write must look like', () => {
  it.each([
    ['application/json', {}],
    ['application/json; charset=utf-8', {}],
    ['application/json', { origin: 'http://127.0.0.1:8580' }],
  ])('passes %s from %j', (type, more) => {
    expect(thrown(() => checkWrite(post({ 'content-type': type, ...more })))).toBeUndefined();
  });

  it.each([
    [undefined],
    ['text/plain'],
    ['application/x-www-form-urlencoded'],
    ['multipart/form-data; boundary=x'],
    ['application/jsonp'],
    ['application/vnd.evil+json'],
  ])('refuses the content type %j with 415', (type) => {
    const err = thrown(() => checkWrite(post(type ? { 'content-type': type } : {})));

    expect(err).toBeInstanceOf(UnsupportedMediaTypeError);
    expect(toHttpError(err).body.error.message).toMatch(/application\/json/);
  });

  it.each([
    'https://evil.example',
    'http://127.0.0.1:9999',
    'http://localhost:8580',
    'null',
    'http://127.0.0.1:8580.evil.example',
    'file://',
  ])('refuses a browser write from the origin %j with 403', (origin) => {
    const err = thrown(() => checkWrite(post({ 'content-type': 'application/json', origin })));

    expect(err).toBeInstanceOf(ForbiddenError);
    expect(toHttpError(err).statusCode).toBe(403);
  });
});

describe('stream slots', () => {
  it('gives a caller at most `max` streams on an instance, others theirs, and takes them back', () => {
    const slots = createStreamSlots(2);
    const first = slots.take('alice');
    slots.take('alice');

    const third = thrown(() => slots.take('alice'));
    const bobs = slots.take('bob');
    first();
    first(); // giving back twice frees one slot, not two
    const again = slots.take('alice');
    const fourth = thrown(() => slots.take('alice'));

    expect(third).toBeInstanceOf(TooManyStreamsError);
    expect(toHttpError(third)).toMatchObject({ statusCode: 429, headers: { 'retry-after': '5' } });
    expect(typeof bobs).toBe('function');
    expect(typeof again).toBe('function');
    expect(fourth).toBeInstanceOf(TooManyStreamsError);
  });
});
