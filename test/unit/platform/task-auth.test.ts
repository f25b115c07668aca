import type { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { UnauthenticatedError } from '../../../functions/platform/errors.js';
import { createTaskAuthenticator } from '../../../functions/platform/task-auth.js';

const SA = 'fanout-tasks@my-project.iam.gserviceaccount.com';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** The Cloud Tasks emulator's token: `alg: none`, no signature. */
function emulatorToken(claims: Record<string, unknown>): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** A token that looks signed; only the injected client decides on it. */
const signedToken = `${b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64({ email: SA })}.c2lnbmF0dXJl`;

/** An OAuth2Client stand-in whose verifyIdToken returns `payload` (or throws `error`). */
function fakeClient(result: { payload?: Record<string, unknown>; error?: Error }) {
  const calls: Array<{ idToken: string; audience?: string }> = [];
  const client = {
    async verifyIdToken(options: { idToken: string; audience?: string }) {
      calls.push(options);
      if (result.error) throw result.error;
      return { getPayload: () => result.payload };
    },
  };
  return { client: client as unknown as OAuth2Client, calls };
}

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
  const unusedClient = fakeClient({ error: new Error('must not be called') }).client;

  it('accepts the emulator token for the service account when emulator tokens are allowed', async () => {
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: true }, unusedClient);

    await expect(
      auth.verify(`Bearer ${emulatorToken({ email: SA, exp: inAnHour() })}`),
    ).resolves.toBeUndefined();
  });

  it('refuses an unsigned token in the cloud', async () => {
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: false }, unusedClient);

    const err = await refusal(auth.verify(`Bearer ${emulatorToken({ email: SA, exp: inAnHour() })}`));

    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/unsigned/);
  });

  it('refuses a token for another service account', async () => {
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: true }, unusedClient);

    const err = await refusal(
      auth.verify(`Bearer ${emulatorToken({ email: 'intruder@evil.example', exp: inAnHour() })}`),
    );

    expect(err.statusCode).toBe(401);
    expect(err.message).toContain('intruder@evil.example');
  });

  it('refuses an expired token', async () => {
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: true }, unusedClient);
    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;

    const err = await refusal(auth.verify(`Bearer ${emulatorToken({ email: SA, exp: anHourAgo })}`));

    expect(err.message).toMatch(/expired/);
  });
});

describe('task authentication: the header', () => {
  const auth = createTaskAuthenticator(
    { serviceAccount: SA, acceptEmulatorTokens: true },
    fakeClient({ error: new Error('bad signature') }).client,
  );

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

describe('task authentication: signed tokens', () => {
  it('verifies a signed token with the OAuth2 client for the worker audience', async () => {
    const { client, calls } = fakeClient({ payload: { email: SA, email_verified: true } });
    const auth = createTaskAuthenticator(
      { audience: 'https://worker.example.com/', serviceAccount: SA, acceptEmulatorTokens: false },
      client,
    );

    await auth.verify(`Bearer ${signedToken}`);

    expect(calls).toEqual([{ idToken: signedToken, audience: 'https://worker.example.com/' }]);
  });

  it('refuses a signed token for another service account', async () => {
    const { client } = fakeClient({
      payload: { email: 'other@x.iam.gserviceaccount.com', email_verified: true },
    });
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: false }, client);

    const err = await refusal(auth.verify(`Bearer ${signedToken}`));

    expect(err.statusCode).toBe(401);
  });

  it('refuses a signed token whose email is not verified', async () => {
    const { client } = fakeClient({ payload: { email: SA, email_verified: false } });
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: false }, client);

    const err = await refusal(auth.verify(`Bearer ${signedToken}`));

    expect(err.message).toMatch(/not verified/);
  });

  it('refuses a token the client cannot verify, keeping the cause', async () => {
    const cause = new Error('Invalid token signature');
    const { client } = fakeClient({ error: cause });
    const auth = createTaskAuthenticator({ serviceAccount: SA, acceptEmulatorTokens: true }, client);

    const err = await refusal(auth.verify(`Bearer ${signedToken}`));

    expect(err.statusCode).toBe(401);
    expect(err.cause).toBe(cause);
  });
});
