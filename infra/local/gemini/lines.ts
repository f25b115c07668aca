import { createReadStream } from 'node:fs';

/**
 * The lines of a file, read as a stream (blank lines included, `\r\n` handled). Written out rather
 * than `readline`'s async iterator: under load, a batch reading its input with `for await` over
 * readline while awaiting its own output writes stalled for good mid-file (Node 20), and a batch
 * that never ends is not a behaviour of the real service.
 */
export async function* fileLines(path: string): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of createReadStream(path, { encoding: 'utf8' })) {
    const parts = (rest + (chunk as string)).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) yield p.endsWith('\r') ? p.slice(0, -1) : p;
  }
  if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}
