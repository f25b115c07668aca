import { createRequire } from 'node:module';
import type { NextFunction, Request, Response } from 'express';
import { PayloadTooLargeError, toHttpError, UnsupportedMediaTypeError, ValidationError } from './errors.js';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;
type ParserFactory = (options?: unknown) => Middleware;

const INSTALLED = Symbol.for('gemini-fanout.body-errors');

/** The `{error:{code, status, message}}` answer for a body the framework's parser refused. */
export function parseFailureOf(err: { type?: unknown; status?: unknown }): ReturnType<typeof toHttpError> {
  switch (err.type) {
    case 'entity.too.large':
      return toHttpError(new PayloadTooLargeError('The body is too large.'));
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return toHttpError(
        new UnsupportedMediaTypeError("The body's encoding or charset is not supported; send UTF-8 JSON."),
      );
    default:
      return toHttpError(
        new ValidationError('The body is not valid JSON.', [{ field: 'body', message: 'not valid JSON' }]),
      );
  }
}

/**
 * The Functions Framework parses every body with body-parser before a function runs; a body it
 * cannot parse (broken JSON, an unknown charset) goes to Express's default handler, which answers
 * an HTML page (with a stack trace outside production). The jobs API promises
 * `{error:{code, status, message}}` whoever produces the error, and the framework offers no hook,
 * so the parser factories it calls when it builds its server are wrapped here, once, before that:
 * a parser's error becomes that JSON answer. Called when the functions are registered.
 */
export function installJsonBodyErrors(): void {
  const frameworkRequire = createRequire(
    createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
  );
  const parsers = frameworkRequire('body-parser') as Record<string, ParserFactory> & { [INSTALLED]?: true };
  if (parsers[INSTALLED]) return;
  for (const kind of ['json', 'text', 'urlencoded', 'raw']) {
    const original = parsers[kind];
    if (typeof original !== 'function') continue;
    parsers[kind] = (options?: unknown) => {
      const parse = original(options);
      return (req, res, next) =>
        parse(req, res, (err?: unknown) => {
          if (!err) return next();
          const mapped = parseFailureOf(err as { type?: unknown });
          res.status(mapped.statusCode).set(mapped.headers).json(mapped.body);
        });
    };
  }
  parsers[INSTALLED] = true;
}
