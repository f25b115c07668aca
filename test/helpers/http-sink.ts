import http, { type IncomingHttpHeaders } from 'node:http';

/** One request the sink received. */
export interface SinkRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Epoch ms when the body had arrived. */
  receivedAt: number;
  /** Epoch ms when the caller hung up before a reply, if it did. */
  abortedAt?: number;
}

/** How the sink answers a request. `hang` never answers (to test deadlines). */
export interface SinkReply {
  status?: number;
  headers?: Record<string, string>;
  delayMs?: number;
  hang?: boolean;
}

export type SinkHandler = (request: SinkRequest, index: number) => SinkReply;

/** A recording HTTP target for emulator tests. */
export interface HttpSink {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly requests: SinkRequest[];
  /** Most requests open at once (received, not yet answered). */
  readonly peakInFlight: number;
  /** Replaces how requests are answered (default: 200 at once). */
  reply(handler: SinkHandler): void;
  /** Resolves once `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs: number): Promise<SinkRequest[]>;
  close(): Promise<void>;
}

/** Starts a sink on a free loopback port. */
export async function startHttpSink(): Promise<HttpSink> {
  const requests: SinkRequest[] = [];
  let handler: SinkHandler = () => ({ status: 200 });
  let inFlight = 0;
  let peakInFlight = 0;
  const watchers = new Set<() => void>();
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    let answered = false;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record: SinkRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      const index = requests.push(record) - 1;
      for (const watch of watchers) watch();
      res.on('close', () => {
        if (!answered) record.abortedAt = Date.now();
        inFlight--;
        hanging.delete(res);
      });
      const answer = handler(record, index);
      if (answer.hang) {
        hanging.add(res);
        return;
      }
      const send = (): void => {
        answered = true;
        res.writeHead(answer.status ?? 200, answer.headers ?? {});
        res.end('ok');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('sink has no port');

  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    get peakInFlight() {
      return peakInFlight;
    },
    reply(next) {
      handler = next;
    },
    waitForRequests(count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (requests.length < count) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve(requests.slice(0, count));
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`sink saw ${requests.length} of ${count} requests after ${timeoutMs} ms`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
