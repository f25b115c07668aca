/**
 * A receiver of job callbacks, as small as a safe one gets: it verifies each POST with
 * `verifyCallback` (Standard Webhooks: your key, a timestamp within 5 minutes, and the destination
 * signed into the body must be this receiver's own URL), dedupes on `webhook-id` (a callback is
 * sent at least once) and answers 2xx only to what it accepted.
 *
 *   CALLBACK_KEY=$(npx gemini-fanout callback-key) PUBLIC_URL=https://hooks.example.com/fanout \
 *     npx tsx examples/callback-receiver.ts
 *
 * then submit jobs with `"callbackUrl": "https://hooks.example.com/fanout"`. PUBLIC_URL is the URL
 * as you gave it in `callbackUrl`, not what the request line says (a proxy may rewrite that).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { type CallbackPayload, verifyCallback, WebhookVerificationError } from '../functions/api/client.js';

export interface ReceiverOptions {
  /** Your callback key (`whsec_…`). */
  key: string;
  /** Your `callbackUrl`, exactly the endpoint this receiver serves. */
  url: string;
  /** What to do with a job that ended; called once per `webhook-id`. */
  onJob: (payload: CallbackPayload) => void | Promise<void>;
  /** Bodies larger than this are refused unread (a job view is a few KiB). */
  maxBytes?: number;
}

/** The request handler: 204 for a callback it took (or had taken), 400 for anything unverified. */
export function callbackReceiver(options: ReceiverOptions) {
  // Ids already handled. A real receiver keeps them in its database, with the job's effect.
  const seen = new Set<string>();
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) return void res.writeHead(413).end();
      chunks.push(chunk);
    }
    // Verify the raw bytes as received: never parse and re-serialise before this.
    const raw = Buffer.concat(chunks);
    let payload: CallbackPayload & { webhookId: string };
    try {
      payload = verifyCallback(req.headers, raw, options.key, { url: options.url });
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      return void res.writeHead(400, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
    }
    if (!seen.has(payload.webhookId)) {
      await options.onJob(payload);
      seen.add(payload.webhookId);
    }
    res.writeHead(204).end();
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const key = process.env.CALLBACK_KEY ?? '';
  const url = process.env.PUBLIC_URL ?? '';
  if (!key || !url) throw new Error('set CALLBACK_KEY (npx gemini-fanout callback-key) and PUBLIC_URL');
  const port = Number(process.env.PORT ?? 8080);
  const handle = callbackReceiver({
    key,
    url,
    onJob: (p) =>
      console.log(
        `${p.type}: job ${p.data.id}, ${p.data.counts.succeeded} of ${p.data.counts.total} succeeded`,
      ),
  });
  createServer((req, res) => void handle(req, res)).listen(port, () => console.log(`listening on :${port}`));
}
