import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { sendJsonError, servesHost } from './front-checks.js';

/**
 * The local cloud's identity provider: an OpenID Connect issuer of its own, so ingest verifies local
 * ID tokens with exactly the code that verifies Google's (functions/platform/id-token.ts). It holds an
 * RSA key pair made for this run (node:crypto; never written anywhere), signs RS256 ID tokens for any
 * email, and serves on loopback what Google serves for its own keys:
 *
 * - `GET /oauth2/v1/certs`: the public keys as a PEM map keyed by `kid`, with `Cache-Control:
 *   max-age` (the format of https://www.googleapis.com/oauth2/v1/certs, which google-auth-library's
 *   `verifyIdToken` reads in Node; Google's values are X.509 certificates, ours the bare public key,
 *   which the same `crypto.verify` takes);
 * - `GET /oauth2/v3/certs`: the same key as a JWKS (https://www.googleapis.com/oauth2/v3/certs);
 * - `GET /.well-known/openid-configuration`: the discovery document naming the two;
 * - `GET /token?email=E&audience=A`: a signed ID token for E, one hour, as the metadata server's
 *   `…/identity?audience=A` gives one for its account. Like the metadata server it answers only with
 *   `Metadata-Flavor: Google` (a header no web page can add to a cross-origin request without a
 *   preflight), and only to a `Host` it serves (no DNS rebinding). Test controls, for tokens ingest
 *   must refuse: `exp=` (seconds since the epoch, e.g. in the past) and `iss=` (another issuer).
 */
export interface IdIssuer {
  /** The issuer (`iss` of its tokens): `http://127.0.0.1:PORT`. */
  url: string;
  /** Where its keys are: `${url}/oauth2/v1/certs`. */
  certsUrl: string;
  /** An ID token for `email`, audience `audience`, signed now for one hour. */
  idToken(email: string, audience: string, overrides?: TokenOverrides): string;
  close(): Promise<void>;
}

/** Claims a test may change to make a token that must be refused (`exp`, `iss`, `email_verified`…). */
export type TokenOverrides = Record<string, unknown>;

/** Google's ID tokens last one hour. */
const LIFETIME_SECONDS = 3600;

/** The signing key: the public half as PEM and JWK, and its `kid` (a hash of the public key). */
interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  pem: string;
  jwk: Record<string, unknown>;
}

function newSigningKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const kid = createHash('sha256').update(der).digest('hex').slice(0, 40);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, pem, jwk };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An RS256 JWT of `claims` under `key`. */
export function signJwt(
  claims: Record<string, unknown>,
  key: { kid: string; privateKey: KeyObject },
): string {
  const signed = `${b64({ alg: 'RS256', kid: key.kid, typ: 'JWT' })}.${b64(claims)}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), key.privateKey).toString('base64url')}`;
}

/** A stable numeric subject per email, as Google's `sub` (a number as a string). */
function subjectFor(email: string): string {
  return `1${createHash('sha256').update(email).digest().readBigUInt64BE(0).toString().padStart(20, '0')}`;
}

/** Starts the issuer on `port` (0: a free one) on 127.0.0.1. */
export async function startIdIssuer(options: { port?: number } = {}): Promise<IdIssuer> {
  const key = newSigningKey();
  let url = '';
  const idToken = (email: string, audience: string, overrides: TokenOverrides = {}) => {
    const iat = Math.floor(Date.now() / 1000);
    const sub = subjectFor(email);
    const claims = { iss: url, aud: audience, azp: sub, sub, email, email_verified: true, iat };
    return signJwt({ ...claims, exp: iat + LIFETIME_SECONDS, ...overrides }, key);
  };
  const server = createServer((req, res) => serve(req, res, { key, url, idToken, port: portOf(server) }));
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', () => ok());
  });
  url = `http://127.0.0.1:${portOf(server)}`;
  return {
    url,
    certsUrl: `${url}/oauth2/v1/certs`,
    idToken,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

interface IssuerState {
  key: SigningKey;
  url: string;
  port: number;
  idToken: IdIssuer['idToken'];
}

function serve(req: IncomingMessage, res: ServerResponse, state: IssuerState): void {
  res.setHeader('x-content-type-options', 'nosniff');
  if (!servesHost(req.headers.host, state.port)) {
    sendJsonError(res, 403, 'PERMISSION_DENIED', 'This host name is not served here.');
    return;
  }
  const url = new URL(req.url ?? '/', state.url);
  if (req.method !== 'GET') {
    sendJsonError(res, 405, 'UNIMPLEMENTED', 'Use GET.');
    return;
  }
  const keys = { 'cache-control': 'public, max-age=3600', 'content-type': 'application/json' };
  if (url.pathname === '/oauth2/v1/certs') {
    res.writeHead(200, keys).end(JSON.stringify({ [state.key.kid]: state.key.pem }));
  } else if (url.pathname === '/oauth2/v3/certs') {
    res.writeHead(200, keys).end(JSON.stringify({ keys: [state.key.jwk] }));
  } else if (url.pathname === '/.well-known/openid-configuration') {
    res.writeHead(200, keys).end(
      JSON.stringify({
        issuer: state.url,
        jwks_uri: `${state.url}/oauth2/v3/certs`,
        id_token_signing_alg_values_supported: ['RS256'],
        subject_types_supported: ['public'],
        response_types_supported: ['id_token'],
      }),
    );
  } else if (url.pathname === '/token') {
    serveToken(req, res, url, state);
  } else {
    sendJsonError(res, 404, 'NOT_FOUND', `No route for GET ${url.pathname}.`);
  }
}

function serveToken(req: IncomingMessage, res: ServerResponse, url: URL, state: IssuerState): void {
  if (req.headers['metadata-flavor'] !== 'Google') {
    sendJsonError(res, 403, 'PERMISSION_DENIED', 'Send Metadata-Flavor: Google, as to the metadata server.');
    return;
  }
  const email = url.searchParams.get('email') ?? '';
  const audience = url.searchParams.get('audience') ?? '';
  if (!/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(email) || audience === '') {
    sendJsonError(res, 400, 'INVALID_ARGUMENT', 'Ask for ?email=NAME@DOMAIN&audience=URL.');
    return;
  }
  const exp = url.searchParams.get('exp');
  const iss = url.searchParams.get('iss');
  const token = state.idToken(email, audience, {
    ...(exp !== null && Number.isInteger(Number(exp)) ? { exp: Number(exp) } : {}),
    ...(iss ? { iss } : {}),
  });
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(token);
}
