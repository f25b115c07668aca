import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Faults of Cloud Run's front, before a request reaches the worker: a 429 when the service is at its
 * maximum instances, a 503 while it cannot serve, a 401/403 after an IAM slip. Cloud Tasks sees an
 * answer, backs off and, after its last attempt, deletes the task: the item never heard of it. Tests
 * switch one on for one queue (tests isolate by model, so by queue) for a number of seconds:
 * `POST {workerUrl}__front/faults` with `{"queue": "fanout-…", "status": 429, "seconds": 20}`.
 * The host's primary shares every fault with every instance, and with instances started later.
 */
export interface FrontFault {
  /** `X-CloudTasks-QueueName` of the deliveries refused. */
  queue: string;
  status: number;
  /** Epoch ms the fault lasts until. */
  untilMs: number;
}

/** The control path on the worker's port. */
export const FRONT_FAULTS_PATH = '/__front/faults';

/** A fault from a control request's JSON body, or a message saying what is wrong with it. */
export function parseFrontFault(body: unknown, nowMs: number): FrontFault | string {
  const b = body as { queue?: unknown; status?: unknown; seconds?: unknown } | null;
  if (!b || typeof b.queue !== 'string' || b.queue.length === 0) return 'queue: a queue id is required';
  if (typeof b.status !== 'number' || b.status < 400 || b.status > 599) return 'status: 400-599';
  if (typeof b.seconds !== 'number' || b.seconds < 0) return 'seconds: a number of seconds, 0 or more';
  return { queue: b.queue, status: b.status, untilMs: nowMs + b.seconds * 1000 };
}

/** Adds a fault (replacing one of the same queue) and drops the ones that are over. */
export function withFault(faults: FrontFault[], fault: FrontFault, nowMs: number): FrontFault[] {
  return [...faults.filter((f) => f.queue !== fault.queue && f.untilMs > nowMs), fault];
}

/** The fault that refuses a delivery of `queue` now, if any. */
export function activeFault(
  faults: FrontFault[],
  queue: string | undefined,
  nowMs: number,
): FrontFault | undefined {
  return queue === undefined ? undefined : faults.find((f) => f.queue === queue && f.untilMs > nowMs);
}

/**
 * The worker's front in one instance: answers control requests (and hands each new fault to
 * `share`, the primary), refuses deliveries of a faulty queue, passes the rest to `next`.
 */
export function createWorkerFront(share: (fault: FrontFault) => void) {
  let faults: FrontFault[] = [];
  return {
    /** Every fault the primary knows of (an instance started later gets them too). */
    replace(all: FrontFault[]): void {
      faults = all;
    },
    handle(req: IncomingMessage, res: ServerResponse, next: () => void): void {
      if (req.url === FRONT_FAULTS_PATH && req.method === 'POST') {
        control(req, res);
        return;
      }
      const queue = req.headers['x-cloudtasks-queuename'];
      const fault = activeFault(faults, Array.isArray(queue) ? queue[0] : queue, Date.now());
      if (!fault) {
        next();
        return;
      }
      req.resume();
      res
        .writeHead(fault.status, { 'content-type': 'text/plain' })
        .end(`${fault.status}: refused by the front (a fault injected for tests)\n`);
    },
  };

  function control(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let parsed: FrontFault | string;
      try {
        parsed = parseFrontFault(JSON.parse(Buffer.concat(chunks).toString('utf8')), Date.now());
      } catch {
        parsed = 'the body must be JSON';
      }
      if (typeof parsed === 'string') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`${parsed}\n`);
        return;
      }
      faults = withFault(faults, parsed, Date.now());
      share(parsed);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(parsed));
    });
  }
}
