import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { RequestItem } from '../functions/api/jobs.js';

/**
 * Reads a prompt file: one JSON object per line, `{"key"?, "prompt"}` or `{"key", "request"}`, with
 * optional `media`. Blank lines are skipped; a line that is not a JSON object is reported with its
 * number. The fields themselves are checked by the server, which names the bad item.
 */
export async function readPromptFile(path: string): Promise<RequestItem[]> {
  const requests: RequestItem[] = [];
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${n}: not valid JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`${path}:${n}: expected an object like {"prompt": "..."}`);
    }
    const { key, prompt, request, media } = value as RequestItem;
    requests.push({
      key: key === undefined ? String(requests.length) : String(key),
      ...(prompt !== undefined ? { prompt } : {}),
      ...(request !== undefined ? { request } : {}),
      ...(media !== undefined ? { media } : {}),
    });
  }
  if (requests.length === 0) throw new Error(`${path}: no prompts in the file`);
  return requests;
}
