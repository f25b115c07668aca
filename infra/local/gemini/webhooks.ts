import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { GeminiStandInConfig } from './config.js';
import { sleep } from './http.js';

type Json = Record<string, unknown>;

/** A batch's terminal state → the event its end pushes. */
const EVENT_OF: Record<string, 'batch.succeeded' | 'batch.failed' | 'batch.cancelled' | 'batch.expired'> = {
  BATCH_STATE_SUCCEEDED: 'batch.succeeded',
  BATCH_STATE_FAILED: 'batch.failed',
  BATCH_STATE_CANCELLED: 'batch.cancelled',
  BATCH_STATE_EXPIRED: 'batch.expired',
};

/** One delivery attempt, as the stand-in saw it answered (for tests). */
export interface WebhookDelivery {
  webhookId: string;
  type: string;
  batch: string;
  status: number | 'error';
}

/**
 * Gemini's batch webhooks (ai.google.dev/gemini-api/docs/webhooks): when a batch ends, a POST of a
 * thin event `{type, version: "v1", timestamp, data: {id, file_name?, error_code?, error_message?}}`
 * to the registered URL, signed per Standard Webhooks (`webhook-id` the same on every attempt and
 * copy, `webhook-timestamp` and `webhook-signature` of each attempt) with the standardwebhooks
 * library. At least once: an answer other than 2xx is tried again (`attempts`, backing off), and
 * `duplicates` copies follow a delivered one. `data.id` is the bare batch id (the docs' examples show
 * a bare id), so receivers must not expect the `batches/` prefix.
 */
export class WebhookSender {
  readonly deliveries: WebhookDelivery[] = [];
  private readonly stop = new AbortController();

  constructor(private readonly config: () => GeminiStandInConfig) {}

  /** A batch resource (the Operation) reached a terminal state: push its event, in the background. */
  batchEnded(resource: Json): void {
    const hooks = this.config().webhooks;
    const metadata = (resource.metadata ?? {}) as Json;
    const type = EVENT_OF[String(metadata.state)];
    if (!hooks.url || !hooks.secret || !type || !hooks.events.includes(type)) return;
    const output = (metadata.output ?? {}) as Json;
    const error = resource.error as { code?: number; message?: string } | undefined;
    const body = JSON.stringify({
      type,
      version: 'v1',
      timestamp: new Date().toISOString(),
      data: {
        id: String(resource.name).replace(/^batches\//, ''),
        ...(typeof output.responsesFile === 'string' ? { file_name: output.responsesFile } : {}),
        ...(error ? { error_code: error.code, error_message: error.message } : {}),
      },
    });
    const target = { url: hooks.url, secret: hooks.secret, id: `msg_${randomUUID()}`, type, body };
    void this.deliver(target, String(resource.name), hooks);
  }

  private async deliver(
    target: { url: string; secret: string; id: string; type: string; body: string },
    batch: string,
    hooks: GeminiStandInConfig['webhooks'],
  ): Promise<void> {
    let delivered = false;
    for (let attempt = 0; attempt < hooks.attempts && !delivered; attempt++) {
      if (attempt > 0) await sleep(hooks.retryDelayMs * 2 ** (attempt - 1), this.stop.signal);
      if (this.stop.signal.aborted) return;
      delivered = await this.post(target, batch);
    }
    for (let copy = 0; delivered && copy < hooks.duplicates && !this.stop.signal.aborted; copy++) {
      await this.post(target, batch);
    }
  }

  /** One signed POST; whether it was answered 2xx. */
  private async post(
    target: { url: string; secret: string; id: string; type: string; body: string },
    batch: string,
  ): Promise<boolean> {
    const now = new Date();
    const signature = new Webhook(target.secret).sign(target.id, now, target.body);
    let status: number | 'error' = 'error';
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': target.id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body: target.body,
        signal: this.stop.signal,
      });
      status = res.status;
      await res.body?.cancel();
    } catch {
      // Unreachable or closed: tried again like a non-2xx.
    }
    this.deliveries.push({ webhookId: target.id, type: target.type, batch, status });
    return typeof status === 'number' && status >= 200 && status < 300;
  }

  /** Stops every delivery in flight (server shutdown). */
  close(): void {
    this.stop.abort();
  }
}
