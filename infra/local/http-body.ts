import type { IncomingMessage } from 'node:http';

/**
 * Reads a whole (small) request body for the local emulators; beyond `limit` bytes throws
 * `tooLarge(limit)`, each emulator's own error. A body declared too large by its content-length is
 * refused before it is read; either way the rest of it is drained first (leaving the loop early would
 * destroy the socket), so the emulator's answer reaches the client.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: (limit: number) => Error,
): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
    else chunks.length = 0;
  }
  if (size > limit) throw tooLarge(limit);
  return Buffer.concat(chunks);
}
