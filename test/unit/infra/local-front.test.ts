import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdTokenVerifier } from '../../../functions/platform/id-token.js';
import { type IdIssuer, startIdIssuer } from '../../../infra/local/id-issuer.js';
import { createLocalFront, LOCAL_DEVELOPER } from '../../../infra/local/identity.js';

// The local cloud's stand-in for Cloud Run's front of ingest (infra/local/identity.ts).

const INGEST = 'http://127.0.0.1:8580';
let issuer: IdIssuer;
beforeAll(async () => {
  issuer = await startIdIssuer();
});
afterAll(() => issuer.close());

const front = () =>
  createLocalFront(
    createIdTokenVerifier({ audiences: [INGEST], extraIssuers: [issuer.url], certsUrl: issuer.certsUrl }),
    async () => issuer.idToken(LOCAL_DEVELOPER, INGEST),
  );
const request = (headers: Record<string, string>) =>
  ({ headers: { ...headers } }) as unknown as IncomingMessage;

describe('the local front of ingest', () => {
  it("signs the local developer's token onto a request with no token", async () => {
    const req = request({});

    expect(await front().admit(req)).toEqual({ pass: true });
    expect(req.headers.authorization).toMatch(/^Bearer ey/);
  });

  it('admits a verified X-Serverless-Authorization and leaves Authorization as it came', async () => {
    const req = request({
      'x-serverless-authorization': `Bearer ${issuer.idToken('alice@example.com', INGEST)}`,
      authorization: 'Bearer forged',
    });

    expect(await front().admit(req)).toEqual({ pass: true });
    expect(req.headers.authorization).toBe('Bearer forged');
  });

  it('refuses a bad X-Serverless-Authorization, whatever Authorization holds, and a bad Authorization', async () => {
    const good = `Bearer ${issuer.idToken('bob@example.com', INGEST)}`;
    const wrongAudience = `Bearer ${issuer.idToken('bob@example.com', 'https://elsewhere.example')}`;

    const verdicts = await Promise.all([
      front().admit(request({ 'x-serverless-authorization': 'Bearer junk', authorization: good })),
      front().admit(request({ authorization: wrongAudience })),
      front().admit(request({ authorization: 'Basic dXNlcjpwYXNz' })),
    ]);

    for (const verdict of verdicts) expect(verdict).toMatchObject({ pass: false, status: 401 });
  });
});
