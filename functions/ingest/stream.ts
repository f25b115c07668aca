import type { Response } from '@google-cloud/functions-framework';

/**
 * Writes a generator to the response. The first chunk is read before the headers go out, so an
 * error such as an unknown job still gets its proper status. A client that goes away while the
 * stream waits for room ends the wait (and the generator) at once.
 */
export async function pipeStream(
  res: Response,
  chunks: AsyncGenerator<string>,
  contentType: string,
): Promise<void> {
  const first = await chunks.next();
  res
    .status(200)
    .set({ 'content-type': contentType, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  if (!first.done) res.write(first.value);
  try {
    for await (const chunk of chunks) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await roomOrGone(res);
    }
  } finally {
    await chunks.return(undefined);
  }
  if (!res.destroyed) res.end();
}

/** Resolves when the response can take more, or when its connection is gone. */
function roomOrGone(res: Response): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
