import type { NextFunction, Request, Response } from 'express';
import { PayloadTooLargeError, toHttpError } from './errors.js';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

const WATCHED = Symbol('gemini-fanout.body-watched');

/** What a caller reads when a body passes the cap, wherever it is noticed. */
export function bodyTooLargeMessage(cap: number): string {
  return `The body is larger than ${cap} bytes; send a JSONL file to the bucket instead.`;
}

/** How long a refused body's connection stays half-closed, its incoming bytes dropped unread. */
export const LINGER_MS = 5_000;

/**
 * Answers 413 at once and closes the connection: the rest of the body is never parsed or kept
 * (Node would otherwise read it off to keep the connection alive). A no-op once an answer has
 * started.
 */
export function refuseBody(req: Request, res: Response, cap: number): void {
  if (res.headersSent) return;
  req.unpipe();
  req.pause();
  closeInStages(req);
  const mapped = toHttpError(new PayloadTooLargeError(bodyTooLargeMessage(cap)));
  res
    .status(mapped.statusCode)
    .set({ ...mapped.headers, connection: 'close' })
    .json(mapped.body);
}

/**
 * Closes the connection as RFC 9112 §9.6 asks, so the client reads the 413 instead of a reset: a
 * socket closed while the client's bytes sit unread makes the kernel answer them with RST, and a
 * client still writing its body then fails with EPIPE before it has read the answer (a third of
 * 33 MiB bodies did, against a server in another process). Node ends a `connection: close` answer
 * with `socket.destroySoon()`; here that half-closes instead (the answer and a FIN go out), and
 * the bytes still coming are read and dropped until the client closes its side or `LINGER_MS`
 * passes, whichever is first.
 */
function closeInStages(req: Request): void {
  const socket = req.socket;
  socket.destroySoon = () => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    req.on('data', () => {});
    req.resume();
  };
}

/** Counts the bytes that arrive on the wire, and refuses the body the moment they pass `cap`. */
function watchWire(req: Request, res: Response, cap: number): void {
  (req as unknown as Record<symbol, true>)[WATCHED] = true;
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > cap) refuseBody(req, res, cap);
  });
}

/**
 * Bounds one of the framework's body parsers (`parse`, built with `limit: cap`, so the parser
 * itself stops buffering once the body it reads — inflated, for a compressed one — passes `cap`):
 * - a declared `Content-Length` over `cap` is refused before a byte is read;
 * - once the parser has started reading (it does so synchronously, before any data can arrive),
 *   the bytes on the wire are counted too, so a compressed body is capped on the wire as well, and
 *   a body without a length is refused as soon as it passes `cap`, not after it has all arrived.
 * Every parser of the chain is wrapped; the one that reads the body is the one that is watched.
 */
export function boundBody(parse: Middleware, cap: number): Middleware {
  return (req, res, next) => {
    const declared = Number(req.headers['content-length']);
    if (declared > cap) {
      refuseBody(req, res, cap);
      return;
    }
    parse(req, res, next);
    if (req.readableFlowing === true && !(WATCHED in req)) watchWire(req, res, cap);
  };
}
