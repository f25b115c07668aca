import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  callbackIdFor,
  verifyCallback,
  verifyWebhook,
  WebhookVerificationError,
} from '../../../functions/api/webhooks.js';
import { callbackHeaders, callbackKeyFor } from '../../../functions/platform/notify-signature.js';
import { jobViewFixture } from '../../fixtures/job-view.js';

const SECRET = 'a-test-callback-master-secret-of-32-characters-or-more';
const ALICE = callbackKeyFor(SECRET, 'alice@example.com');
const BOB = callbackKeyFor(SECRET, 'bob@example.com');
const NOW = 1_760_000_000;
const URL_A = 'https://hooks.alice.example/jobs/done';

const JOB = jobViewFixture({
  id: '6d1f0a52-1111-4222-8333-944455556666',
  status: 'succeeded',
  counts: { total: 1, succeeded: 1, failed: 0, cancelled: 0, pending: 0 },
  createdAt: '2026-01-02T03:04:00.000Z',
  finishedAt: '2026-01-02T03:04:05.000Z',
});

/** A callback as the sender builds it (notify.ts): the payload with its destination, signed. */
function signed(key: string, destination = URL_A, at = NOW) {
  const body = JSON.stringify({ type: 'job.succeeded', timestamp: JOB.finishedAt, destination, data: JOB });
  return { body, headers: callbackHeaders(key, callbackIdFor(JOB.id), body, at) };
}

const reason = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return (err as Error).message;
  }
  return 'accepted';
};

describe('callbackKeyFor', () => {
  it('derives a stable Standard Webhooks key per owner, another for each owner and for the deployment', () => {
    expect(ALICE).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(callbackKeyFor(SECRET, 'alice@example.com')).toBe(ALICE);
    expect(BOB).not.toBe(ALICE);
    expect(callbackKeyFor(SECRET, undefined)).not.toBe(ALICE);
    expect(callbackKeyFor(`${SECRET}-rotated`, 'alice@example.com')).not.toBe(ALICE);
    // The reference library takes it as it is.
    expect(() => new Webhook(ALICE)).not.toThrow();
  });
});

describe('callbackHeaders', () => {
  it('signs "<id>.<timestamp>.<body>" as the reference library does', () => {
    const { body, headers } = signed(ALICE);

    expect(headers['webhook-id']).toBe(`job_${JOB.id}`);
    expect(headers['webhook-timestamp']).toBe(String(NOW));
    expect(headers['webhook-signature']).toBe(
      new Webhook(ALICE).sign(`job_${JOB.id}`, new Date(NOW * 1000), body),
    );
  });
});

describe('verifyCallback', () => {
  it('returns the payload and its webhook-id for the right key, URL and time', () => {
    const { body, headers } = signed(ALICE);

    const payload = verifyCallback(headers, body, ALICE, { url: URL_A, nowSeconds: NOW + 299 });

    expect(payload).toMatchObject({ type: 'job.succeeded', destination: URL_A, webhookId: `job_${JOB.id}` });
    expect(payload.data.id).toBe(JOB.id);
    expect(
      verifyCallback(new Headers(headers), Buffer.from(body), ALICE, { url: URL_A, nowSeconds: NOW }),
    ).toBeTruthy();
  });

  it("refuses another owner's key", () => {
    const { body, headers } = signed(BOB);

    expect(reason(() => verifyCallback(headers, body, ALICE, { url: URL_A, nowSeconds: NOW }))).toMatch(
      /no signature matches/,
    );
  });

  it('refuses a callback replayed to another URL, and a destination edited to match', () => {
    const { body, headers } = signed(ALICE, 'https://hooks.bob.example/in');
    const edited = body.replace('https://hooks.bob.example/in', URL_A);

    expect(reason(() => verifyCallback(headers, body, ALICE, { url: URL_A, nowSeconds: NOW }))).toMatch(
      /another destination/,
    );
    expect(reason(() => verifyCallback(headers, edited, ALICE, { url: URL_A, nowSeconds: NOW }))).toMatch(
      /no signature matches/,
    );
  });

  it('refuses a stale or future timestamp, and one edited to look fresh', () => {
    const { body, headers } = signed(ALICE);
    const opts = (nowSeconds: number) => ({ url: URL_A, nowSeconds });

    expect(reason(() => verifyCallback(headers, body, ALICE, opts(NOW + 301)))).toMatch(/more than 300 s/);
    expect(reason(() => verifyCallback(headers, body, ALICE, opts(NOW - 301)))).toMatch(/more than 300 s/);
    expect(
      reason(() =>
        verifyCallback(headers, body, ALICE, { url: URL_A, nowSeconds: NOW + 500, toleranceSeconds: 600 }),
      ),
    ).toBe('accepted');
    const fresh = { ...headers, 'webhook-timestamp': String(NOW + 400) };
    expect(reason(() => verifyCallback(fresh, body, ALICE, opts(NOW + 400)))).toMatch(/no signature matches/);
  });

  it('refuses a tampered body or id, and missing or malformed headers', () => {
    const { body, headers } = signed(ALICE);
    const check = (h: Record<string, string>, b = body) =>
      reason(() => verifyCallback(h, b, ALICE, { url: URL_A, nowSeconds: NOW }));

    expect(check(headers, body.replace('"succeeded"', '"failed"'))).toMatch(/no signature matches/);
    expect(check({ ...headers, 'webhook-id': 'job_other' })).toMatch(/no signature matches/);
    expect(check({ ...headers, 'webhook-signature': '' })).toMatch(/missing/);
    expect(
      check({ 'webhook-id': headers['webhook-id']!, 'webhook-signature': headers['webhook-signature']! }),
    ).toMatch(/missing/);
    expect(check({ ...headers, 'webhook-timestamp': '1e9' })).toMatch(/malformed/);
    expect(
      check({ ...headers, 'webhook-signature': headers['webhook-signature']!.replace('v1,', 'v1a,') }),
    ).toMatch(/no signature matches/);
    expect(
      reason(() => verifyCallback(headers, body, 'not-a-key!', { url: URL_A, nowSeconds: NOW })),
    ).toMatch(/not a Standard Webhooks key/);
  });

  it('accepts any of several space-separated signatures (key rotation)', () => {
    const { body, headers } = signed(ALICE);
    const old = signed(BOB).headers['webhook-signature'];
    const both = { ...headers, 'webhook-signature': `${old} ${headers['webhook-signature']}` };

    expect(reason(() => verifyCallback(both, body, ALICE, { url: URL_A, nowSeconds: NOW }))).toBe('accepted');
  });
});

describe('verifyWebhook', () => {
  it('verifies any Standard Webhooks message signed by the reference library', () => {
    const key = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const body = '{"type":"batch.succeeded"}';
    const signature = new Webhook(key).sign('msg_1', new Date(NOW * 1000), body);
    const headers = {
      'Webhook-Id': 'msg_1',
      'Webhook-Timestamp': String(NOW),
      'Webhook-Signature': signature,
    };

    expect(verifyWebhook(headers, body, key, { nowSeconds: NOW })).toEqual({
      id: 'msg_1',
      timestampSeconds: NOW,
    });
  });
});
