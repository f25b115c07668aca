import { createRequire } from 'node:module';
import type { NextFunction, Request, Response } from 'express';
import { bodyTooLargeMessage, boundBody } from './body-limit.js';
import { PayloadTooLargeError, toHttpError, UnsupportedMediaTypeError, ValidationError } from './errors.js';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;
type ParserFactory = (options?: unknown) => Middleware;

const INSTALLED = Symbol.for('gemini-fanout.body-errors');

/** The `{error:{code, status, message}}` answer for a body the framework's parser refused. */
export function parseFailureOf(err: {
  type?: unknown;
  status?: unknown;
  limit?: unknown;
}): ReturnType<typeof toHttpError> {
  switch (err.type) {
    case 'entity.too.large':
      return toHttpError(
        new PayloadTooLargeError(
          typeof err.limit === 'number' ? bodyTooLargeMessage(err.limit) : 'The body is too large.',
        ),
      );
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
 *
 * The framework also sets every parser's limit to 1 GB (hard-coded in its `server.js`, no option,
 * no environment variable) and inflates gzip/deflate/br by default, so a 1 MB gzip of zeros would
 * become 1 GB in memory. The wrapped parsers take `maxBodyBytes` as their limit instead, counted on
 * the inflated stream, and are bounded on the wire as well (see body-limit.ts): over it is 413.
 */
export function installJsonBodyErrors(maxBodyBytes: number): void {
  const frameworkRequire = createRequire(
    createRequire(import.meta.url).resolve('@google-cloud/functions-framework'),
  );
  const parsers = frameworkRequire('body-parser') as Record<string, ParserFactory> & { [INSTALLED]?: true };
  if (parsers[INSTALLED]) return;
  for (const kind of ['json', 'text', 'urlencoded', 'raw']) {
    const original = parsers[kind];
    if (typeof original !== 'function') continue;
    parsers[kind] = (options?: unknown) => {
      const parse = boundBody(original({ ...(options as object), limit: maxBodyBytes }), maxBodyBytes);
      return (req, res, next) => {
        // Every answer (JSON, JSONL, SSE, HTML, and the 413/400 of a refused body) is taken as the
        // type it declares, never content-sniffed by a browser. The parsers run first on every request.
        res.setHeader('x-content-type-options', 'nosniff');
        parse(req, res, (err?: unknown) => {
          // The body was refused already (body-limit.ts), and the connection is closing.
          if (res.headersSent) return;
          if (!err) return next();
          const mapped = parseFailureOf(err as { type?: unknown });
          res.status(mapped.statusCode).set(mapped.headers).json(mapped.body);
        });
      };
    };
  }
  parsers[INSTALLED] = true;
}
