import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnauthenticatedError } from '../../../functions/platform/errors.js';
import type { IdTokenVerifier } from '../../../functions/platform/id-token.js';
import { createTaskAuthenticator, type TaskAuthOptions } from '../../../functions/platform/task-auth.js';
import { type IdIssuer, startIdIssuer } from '../../../infra/local/id-issuer.js';

const SA = 'fanout-tasks@my-project.iam.gserviceaccount.com';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** The Cloud Tasks emulator's token: `alg: none`, no signature. */
function emulatorToken(claims: Record<string, unknown>): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

const WORKER = 'https://worker.example.com/';

/** Options of the worker's authenticator, with `acceptEmulatorTokens` as given. */
const opts = (acceptEmulatorTokens: boolean, more: Partial<TaskAuthOptions> = {}): TaskAuthOptions => ({
  service: 'Cloud Tasks',
  audience: WORKER,
  serviceAccount: SA,
  acceptEmulatorTokens,
  ...more,
});

/** A verifier that must not be reached (the emulator's tokens never go to it). */
const unusedVerifier: IdTokenVerifier = {
  verify: () => Promise.reject(new Error('must not be called')),
};

async function refusal(promise: Promise<void>): Promise<UnauthenticatedError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UnauthenticatedError) return err;
    throw err;
  }
  throw new Error('expected an UnauthenticatedError');
}

describe('task authentication: emulator tokens', () => {
  it('accepts the emulator token for the service account when emulator tokens are allowed', async () => {
    const auth = createTaskAuthenticator(opts(true), unusedVerifier);

    await expect(
      auth.verify(`Bearer ${emulatorToken({ email: SA, aud: WORKER, exp: inAnHour() })}`),
    ).resolves.toBeUndefined();
  });

  it('refuses an unsigned token in the cloud', async () => {
    const auth = createTaskAuthenticator(opts(false), unusedVerifier);

    const err = await refusal(
      auth.verify(`Bearer ${emulatorToken({ email: SA, aud: WORKER, exp: inAnHour() })}`),
    );

    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/unsigned/);
  });

  it('refuses a token for another service account', async () => {
    const auth = createTaskAuthenticator(opts(true), unusedVerifier);

    const err = await refusal(
      auth.verify(
        `Bearer ${emulatorToken({ email: 'intruder@evil.example', aud: WORKER, exp: inAnHour() })}`,
      ),
    );

    expect(err.statusCode).toBe(401);
    expect(err.message).toContain('intruder@evil.example');
  });

  it("refuses the emulator's token for another function (audience)", async () => {
    const auth = createTaskAuthenticator(opts(true), unusedVerifier);

    const err = await refusal(
      auth.verify(
        `Bearer ${emulatorToken({ email: SA, aud: 'https://tick.example.com/', exp: inAnHour() })}`,
      ),
    );

    expect(err.message).toMatch(/audience/);
  });

  it('refuses an expired token', async () => {
    const auth = createTaskAuthenticator(opts(true), unusedVerifier);
    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;

    const err = await refusal(
      auth.verify(`Bearer ${emulatorToken({ email: SA, aud: WORKER, exp: anHourAgo })}`),
    );

    expect(err.message).toMatch(/expired/);
  });
});

describe('task authentication: the header', () => {
  const auth = createTaskAuthenticator(opts(true), unusedVerifier);

  it.each([undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer two tokens'])(
    'refuses a missing or malformed header %j with 401',
    async (header) => {
      const err = await refusal(auth.verify(header));

      expect(err.statusCode).toBe(401);
      expect(err.status).toBe('UNAUTHENTICATED');
    },
  );

  it.each(['not-base64-json', '!!!.???.', `${b64({ alg: 'none' })}`, `${b64({ alg: 'none' })}.bm90IGpzb24.`])(
    'refuses the malformed token %j with 401',
    async (token) => {
      const err = await refusal(auth.verify(`Bearer ${token}`));

      expect(err.statusCode).toBe(401);
    },
  );
});

describe("task authentication: signed tokens (the local issuer's, verified as Google's)", () => {
  let issuer: IdIssuer;
  beforeAll(async () => {
    issuer = await startIdIssuer();
  });
  afterAll(() => issuer.close());
  const auth = (more: Partial<TaskAuthOptions> = {}) =>
    createTaskAuthenticator(opts(false, { extraIssuers: [issuer.url], certsUrl: issuer.certsUrl, ...more }));

  it("accepts the service account's token for the function's audience", async () => {
    await expect(auth().verify(`Bearer ${issuer.idToken(SA, WORKER)}`)).resolves.toBeUndefined();
  });

  it('refuses a signed token for another service account', async () => {
    const err = await refusal(
      auth().verify(`Bearer ${issuer.idToken('other@x.iam.gserviceaccount.com', WORKER)}`),
    );

    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/not the Cloud Tasks service account/);
  });

  it("refuses the account's token for another function (audience)", async () => {
    const err = await refusal(auth().verify(`Bearer ${issuer.idToken(SA, 'https://tick.example.com/')}`));

    expect(err.message).toMatch(/audience/);
  });

  it('refuses a signed token whose email is not verified', async () => {
    const err = await refusal(
      auth().verify(`Bearer ${issuer.idToken(SA, WORKER, { email_verified: false })}`),
    );

    expect(err.message).toMatch(/not verified/);
  });

  it('refuses an unsigned token for a function that takes none from the emulator (tick)', async () => {
    const tick = auth({ service: 'Cloud Scheduler', audience: 'https://tick.example.com/' });

    const err = await refusal(
      tick.verify(
        `Bearer ${emulatorToken({ email: SA, aud: 'https://tick.example.com/', exp: inAnHour() })}`,
      ),
    );

    expect(err.message).toMatch(/unsigned/);
  });

  it('refuses everything when the audience is not configured', async () => {
    await expect(auth({ audience: '' }).verify(`Bearer ${issuer.idToken(SA, '')}`)).rejects.toThrow();
  });
});
