/**
 * Gemini's batch webhooks: `POST /gemini-webhook` on the tick function. Gemini pushes an event when
 * a batch ends (`batch.succeeded`, `batch.failed`, `batch.cancelled`, `batch.expired`), signed per
 * the Standard Webhooks spec with the secret it returned when the webhook was registered (headers
 * `webhook-id`, `webhook-timestamp`, `webhook-signature`), delivered at least once and retried for
 * up to 24 h on anything but a 2xx (ai.google.dev/gemini-api/docs/webhooks). The body is a thin
 * notification: `{type, version, timestamp, data: {id, …}}` where `data.id` names the batch; the
 * docs' examples show it without saying whether it carries the `batches/` prefix, so both are taken.
 *
 * The event only says "look now": the run's next step is the one a tick would take (`stepRun`:
 * the same lease, so a webhook and a tick never collect twice; the state read from the Batch API,
 * never from the event). Polling stays the safety net for events lost or refused.
 *
 * Answers: 401 for a missing or bad signature or a timestamp more than 5 minutes off (nothing is
 * read before that); 200 for every verified event, known or not (an unknown batch, another
 * product's event: ignored and logged, so Google does not retry it for a day); 500 when the step
 * failed (Google retries; the tick does too); 404 when no secret is configured.
 */
import { z } from 'zod';
import { type HeadersLike, verifyWebhook, WebhookVerificationError } from '../api/webhooks.js';
import { NotFoundError, toHttpError, UnauthenticatedError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { type BatchCycleDeps, stepRun } from './batch-api/cycle.js';

/** The path of the route on the tick function. */
export const GEMINI_WEBHOOK_PATH = '/gemini-webhook';

/** The events a batch's end pushes (the Webhook resource's `subscribed_events` for batches). */
export const BATCH_EVENTS = ['batch.succeeded', 'batch.failed', 'batch.cancelled', 'batch.expired'] as const;

export interface GeminiWebhookDeps {
  /** GEMINI_WEBHOOK_SECRET (`whsec_…`); absent: the route is off. */
  secret?: string;
  /** The Batch cycle's dependencies, as the tick passes them; absent: no Batch API path. */
  batchApi?: BatchCycleDeps;
  logger: Logger;
  /** The receiver's clock in unix seconds (tests). */
  nowSeconds?: () => number;
}

export interface WebhookAnswer {
  status: number;
  body: unknown;
}

const eventSchema = z.looseObject({
  type: z.string(),
  data: z.looseObject({ id: z.string().optional() }).optional(),
});

/** `batches/{id}` from an event's `data.id`, with or without its prefix; undefined if not an id. */
export function batchNameOf(id: string | undefined): string | undefined {
  const bare = id?.startsWith('batches/') ? id.slice('batches/'.length) : id;
  return bare && /^[A-Za-z0-9_-]{1,128}$/.test(bare) ? `batches/${bare}` : undefined;
}

/** Handles one delivery: verify → read the event → find its run → the run's next step. */
export async function handleGeminiWebhook(
  input: { headers: HeadersLike; rawBody: Uint8Array | string | undefined },
  deps: GeminiWebhookDeps,
): Promise<WebhookAnswer> {
  if (!deps.secret) return refuse(new NotFoundError('No Gemini webhook is configured here.'));
  let webhookId: string;
  try {
    ({ id: webhookId } = verifyWebhook(input.headers, input.rawBody ?? '', deps.secret, {
      ...(deps.nowSeconds ? { nowSeconds: deps.nowSeconds() } : {}),
    }));
  } catch (err) {
    if (!(err instanceof WebhookVerificationError)) throw err;
    deps.logger.warn({ event: 'webhook.refused', reason: err.message }, 'refused a Gemini webhook');
    return refuse(new UnauthenticatedError(`The webhook is not verified: ${err.message}.`));
  }
  const log = deps.logger.child({ webhookId });
  const event = readEvent(input.rawBody ?? '');
  const batchName =
    event && BATCH_EVENTS.some((t) => t === event.type) ? batchNameOf(event.data?.id) : undefined;
  if (!event || !batchName) return ignored(log, 'not a batch event', event?.type);
  return moveOn(batchName, event.type, deps, log);
}

/** The verified body as an event, or undefined when it is not one. */
function readEvent(rawBody: Uint8Array | string): z.infer<typeof eventSchema> | undefined {
  try {
    const text = typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody);
    const parsed = eventSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The named batch's run takes its next step now, as a tick would. */
async function moveOn(
  batchName: string,
  type: string,
  deps: GeminiWebhookDeps,
  log: Logger,
): Promise<WebhookAnswer> {
  if (!deps.batchApi) return ignored(log, 'no Batch API path here', type, batchName);
  const run = await deps.batchApi.runs.findByBatchName(batchName);
  if (!run) return ignored(log, 'no run follows this batch', type, batchName);
  if (run.state !== 'running') {
    log.info(
      { event: 'webhook.already_done', type, batch: batchName, state: run.state },
      'batch already moved on',
    );
    return { status: 200, body: { received: true, batch: batchName, state: run.state } };
  }
  const { outcome, error } = await stepRun(run, deps.batchApi);
  if (error !== undefined) return refuse(new Error(error));
  log.info(
    { event: 'webhook.moved', type, batch: batchName, outcome: outcome ?? null },
    'batch webhook handled',
  );
  return { status: 200, body: { received: true, batch: batchName, outcome: outcome ?? null } };
}

function ignored(log: Logger, reason: string, type?: string, batch?: string): WebhookAnswer {
  log.info({ event: 'webhook.ignored', reason, type, batch }, `Gemini webhook ignored: ${reason}`);
  return { status: 200, body: { received: true, ignored: reason } };
}

function refuse(err: unknown): WebhookAnswer {
  const mapped = toHttpError(err);
  return { status: mapped.statusCode, body: mapped.body };
}
