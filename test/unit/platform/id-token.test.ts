import { createHmac, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallerResolver } from '../../../functions/platform/caller.js';
import { UnauthenticatedError } from '../../../functions/platform/errors.js';
import { createIdTokenVerifier, STRIPPED_SIGNATURE } from '../../../functions/platform/id-token.js';
import { type IdIssuer, signJwt, startIdIssuer } from '../../../infra/local/id-issuer.js';

// The verifier ingest, the worker and tick share, against a real issuer on loopback (the local
// cloud's: RS256 keys of this run, certs served as Google serves its own).

const AUDIENCE = 'https://ingest.example.com';
const ALICE = 'alice@example.com';
let issuer: IdIssuer;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;

beforeAll(async () => {
  issuer = await startIdIssuer();
});
afterAll(() => issuer.close());

function verifier(options: { acceptStrippedSignatures?: boolean } = {}) {
  return createIdTokenVerifier({
    audiences: [AUDIENCE],
    extraIssuers: [issuer.url],
    certsUrl: issuer.certsUrl,
    ...options,
  });
}

async function refusal(promise: Promise<unknown>): Promise<UnauthenticatedError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UnauthenticatedError) return err;
    throw err;
  }
  throw new Error('expected the token to be refused');
}

describe('ID token verification', () => {
  it("accepts the issuer's token and gives its email, lowercased, and subject", async () => {
    const claims = await verifier().verify(issuer.idToken('Alice@Example.com', AUDIENCE));

    expect(claims).toMatchObject({ email: ALICE, iss: issuer.url, aud: AUDIENCE, sub: expect.any(String) });
  });

  it.each([
    ['another audience', () => issuer.idToken(ALICE, 'https://other.example.com'), /audience/],
    ['another issuer', () => issuer.idToken(ALICE, AUDIENCE, { iss: 'https://evil.example' }), /issuer/],
    ['an expired token', () => issuer.idToken(ALICE, AUDIENCE, { exp: now() - 3600 }), /expired/],
    [
      'a lifetime longer than Google gives',
      () => issuer.idToken(ALICE, AUDIENCE, { exp: now() + 86_000 }),
      /lifetime/,
    ],
    ['an unverified email', () => issuer.idToken(ALICE, AUDIENCE, { email_verified: false }), /not verified/],
  ])('refuses %s', async (_, token, says) => {
    const err = await refusal(verifier().verify(token()));

    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(says);
  });

  it('refuses a token signed by another key under the real kid (forged)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const real = issuer.idToken(ALICE, AUDIENCE);
    const claims = JSON.parse(Buffer.from(real.split('.')[1]!, 'base64url').toString());
    const forged = signJwt({ ...claims, email: 'admin@example.com' }, { kid: kidOf(real), privateKey });

    const err = await refusal(verifier().verify(forged));

    expect(err.message).toMatch(/signature/);
    expect(err.message).not.toContain(forged);
  });

  it('refuses a real token whose claims were changed after signing', async () => {
    const [h, , sig] = issuer.idToken(ALICE, AUDIENCE).split('.');
    const changed = `${h}.${b64({ iss: issuer.url, aud: AUDIENCE, sub: '1', email: 'admin@example.com', email_verified: true, iat: now(), exp: now() + 600 })}.${sig}`;

    expect((await refusal(verifier().verify(changed))).message).toMatch(/signature/);
  });

  it('refuses alg none, HS256 keyed with the public key, and a kid it does not know', async () => {
    const claims = {
      iss: issuer.url,
      aud: AUDIENCE,
      sub: '1',
      email: ALICE,
      email_verified: true,
      iat: now(),
      exp: now() + 600,
    };
    const kid = kidOf(issuer.idToken(ALICE, AUDIENCE));
    const pem = ((await (await fetch(issuer.certsUrl)).json()) as Record<string, string>)[kid]!;
    const hsSigned = `${b64({ alg: 'HS256', kid })}.${b64(claims)}`;
    const tokens = [
      `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
      `${b64({ alg: 'none', kid })}.${b64(claims)}.c2ln`,
      `${hsSigned}.${createHmac('sha256', pem).update(hsSigned).digest('base64url')}`,
      `${b64({ alg: 'RS256', kid: 'unknown' })}.${b64(claims)}.c2ln`,
      'not-a-jwt',
    ];

    for (const [n, token] of tokens.entries()) {
      const err = await refusal(verifier().verify(token));
      expect(err.statusCode, token).toBe(401);
      // Refused for their algorithm before any key is looked at, not by luck of the key lookup.
      if (n < 3) expect(err.message, token).toMatch(/only RS256|not a signed JWT/);
    }
  });

  it("refuses a token whose signature Google's front removed, unless told to trust that front", async () => {
    const [h, p] = issuer.idToken(ALICE, AUDIENCE).split('.');
    const stripped = `${h}.${p}.${STRIPPED_SIGNATURE}`;
    const expired = issuer.idToken(ALICE, AUDIENCE, { exp: now() - 3600 }).split('.');
    const strippedExpired = `${expired[0]}.${expired[1]}.${STRIPPED_SIGNATURE}`;
    const other = issuer.idToken(ALICE, 'https://other.example.com').split('.');
    const strippedOther = `${other[0]}.${other[1]}.${STRIPPED_SIGNATURE}`;

    expect((await refusal(verifier().verify(stripped))).message).toMatch(/removed/);
    await expect(verifier({ acceptStrippedSignatures: true }).verify(stripped)).resolves.toMatchObject({
      email: ALICE,
    });
    expect(
      (await refusal(verifier({ acceptStrippedSignatures: true }).verify(strippedExpired))).message,
    ).toMatch(/expired/);
    expect(
      (await refusal(verifier({ acceptStrippedSignatures: true }).verify(strippedOther))).message,
    ).toMatch(/audience/);
  });

  it('has no audience to accept when none is configured: a misconfiguration, not a caller error', async () => {
    const none = createIdTokenVerifier({
      audiences: [],
      extraIssuers: [issuer.url],
      certsUrl: issuer.certsUrl,
    });

    await expect(none.verify(issuer.idToken(ALICE, AUDIENCE))).rejects.not.toBeInstanceOf(
      UnauthenticatedError,
    );
  });
});

describe('the caller of a request', () => {
  const resolve = () => createCallerResolver(verifier(), ['admin@example.com']);
  const bearer = (token: string) => `Bearer ${token}`;

  it('is the identity in X-Serverless-Authorization, whatever Authorization says', async () => {
    const forgedAdmin = `${b64({ alg: 'none' })}.${b64({ email: 'admin@example.com', sub: '1' })}.`;

    const caller = await resolve()({
      serverlessAuthorization: bearer(issuer.idToken(ALICE, AUDIENCE)),
      authorization: bearer(forgedAdmin),
    });

    expect(caller).toEqual({ id: ALICE, admin: false });
  });

  it('never falls back to Authorization when X-Serverless-Authorization does not verify', async () => {
    const err = await refusal(
      resolve()({
        serverlessAuthorization: bearer('junk'),
        authorization: bearer(issuer.idToken('admin@example.com', AUDIENCE)),
      }),
    );

    expect(err.statusCode).toBe(401);
  });

  it('is the identity in Authorization without X-Serverless-Authorization, admin when listed', async () => {
    const caller = await resolve()({ authorization: bearer(issuer.idToken('admin@example.com', AUDIENCE)) });

    expect(caller).toEqual({ id: 'admin@example.com', admin: true });
  });

  it.each([undefined, '', 'Basic dXNlcjpwYXNz', 'Bearer'])(
    'refuses the header %j with 401',
    async (header) => {
      expect((await refusal(resolve()({ authorization: header }))).statusCode).toBe(401);
    },
  );
});
