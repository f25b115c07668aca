/**
 * Which jobs API the CLI talks to, and as whom: `--url`, else `FANOUT_URL`, else the local cloud that
 * `npm run dev` described in `.local/stack.json`. A deployed (non-loopback) URL is private: every
 * request carries the user's Google identity token for it, from Application Default Credentials
 * (`gcloud auth application-default login`, or a service account). A loopback URL gets no token: the
 * local cloud takes a request without one as the local developer; with `--as EMAIL` it carries a
 * token for EMAIL signed by the local cloud's issuer (named in `.local/stack.json`), so one terminal
 * can act as alice and another as bob. `--as` has no meaning for a deployed URL: there the identity
 * is whoever the Google credentials belong to. No token is ever printed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { IdTokenClient } from 'google-auth-library';
import { createJobsClient, type JobsClient } from '../functions/api/client.js';
import { cachedToken, localIdToken } from '../infra/local/identity.js';
import { CliError, EXIT } from './exit-codes.js';

/** Where `npm run dev` writes what it started (DESIGN: Commands). */
export const STACK_FILE = resolve(import.meta.dirname, '..', '.local', 'stack.json');

export interface Target {
  /** The ingest URL, without a trailing slash. */
  url: string;
  /** Where the URL came from, for messages: `--url`, `FANOUT_URL` or the stack file. */
  from: string;
  /** True for loopback URLs: no identity token is sent. */
  local: boolean;
  client: JobsClient;
}

export interface TargetOptions {
  url?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Where to look for the local cloud's description; {@link STACK_FILE} by default. */
  stackFile?: string;
  /** The identity token source for deployed URLs; ADC by default (a test passes its own). */
  idToken?: (audience: string) => () => Promise<string>;
  /** `--as EMAIL`: against the local cloud, act as EMAIL (a token of the local issuer). */
  as?: string | undefined;
}

export async function resolveTarget(options: TargetOptions): Promise<Target> {
  const { url: raw, from } = await findUrl(options);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`${from}: "${raw}" is not a URL`, EXIT.badInput);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`${from}: the jobs API URL must be http(s), not ${url.protocol}`, EXIT.badInput);
  }
  const base = url.href.replace(/\/+$/, '');
  const local = isLoopback(url.hostname);
  if (options.as !== undefined && !local) {
    throw new CliError(
      `--as works only against the local cloud; ${base} takes the identity of your Google credentials (gcloud auth application-default login)`,
      EXIT.badInput,
    );
  }
  const tokenProvider =
    options.as !== undefined
      ? await localTokenFor(options.as, base, options.env.FANOUT_ID_ISSUER, options.stackFile ?? STACK_FILE)
      : local
        ? undefined
        : (options.idToken ?? adcIdToken)(base);
  return {
    url: base,
    from,
    local,
    client: createJobsClient(base, tokenProvider ? { tokenProvider } : {}),
  };
}

async function findUrl(options: TargetOptions): Promise<{ url: string; from: string }> {
  if (options.url) return { url: options.url, from: '--url' };
  if (options.env.FANOUT_URL) return { url: options.env.FANOUT_URL, from: 'FANOUT_URL' };
  const file = options.stackFile ?? STACK_FILE;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new CliError(
      'no jobs API to talk to: pass --url URL or set FANOUT_URL (a deployed ingest function), or start the local cloud with `npm run dev`',
      EXIT.unreachable,
    );
  }
  let ingestUrl: unknown;
  try {
    ingestUrl = (JSON.parse(text) as { ingestUrl?: unknown }).ingestUrl;
  } catch {
    ingestUrl = undefined;
  }
  if (typeof ingestUrl !== 'string' || !ingestUrl) {
    throw new CliError(
      `${file} has no ingestUrl; start the local cloud again with \`npm run dev\``,
      EXIT.unreachable,
    );
  }
  return { url: ingestUrl, from: '.local/stack.json (npm run dev)' };
}

/**
 * `--as EMAIL`: tokens for EMAIL from the local cloud's issuer: `FANOUT_ID_ISSUER` when set (the
 * variable the local cloud gives its functions), else the one `stackFile` names.
 */
async function localTokenFor(
  email: string,
  audience: string,
  fromEnv: string | undefined,
  stackFile: string,
): Promise<() => Promise<string>> {
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new CliError(`--as: "${email}" is not an email`, EXIT.badInput);
  let issuerUrl: unknown = fromEnv;
  try {
    issuerUrl ??= (JSON.parse(await readFile(stackFile, 'utf8')) as { idIssuerUrl?: unknown }).idIssuerUrl;
  } catch {
    issuerUrl = undefined;
  }
  if (typeof issuerUrl !== 'string' || !issuerUrl) {
    throw new CliError(
      `--as needs the local cloud's identity provider, named in ${stackFile}: start the local cloud with \`npm run dev\``,
      EXIT.unreachable,
    );
  }
  return cachedToken(async () => {
    try {
      return await localIdToken(email, { issuerUrl, audience });
    } catch (err) {
      throw new CliError(`--as ${email}: ${(err as Error).message}`, EXIT.auth);
    }
  });
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * The user's identity token for `audience` from Application Default Credentials. The ID token
 * client caches the token and fetches a new one as it nears expiry, so a long watch stays signed in.
 */
function adcIdToken(audience: string): () => Promise<string> {
  let client: Promise<IdTokenClient> | undefined;
  return async () => {
    try {
      // Loaded only for a deployed URL: local runs start faster without it.
      client ??= import('google-auth-library').then(({ GoogleAuth }) =>
        new GoogleAuth().getIdTokenClient(audience),
      );
      const headers = await (await client).getRequestHeaders();
      const value = headers.get('authorization') ?? '';
      const token = value.replace(/^Bearer\s+/i, '');
      if (!token) throw new Error('the credentials gave no identity token');
      return token;
    } catch (err) {
      client = undefined;
      throw new CliError(
        `no Google identity token for ${audience}: ${(err as Error).message} (run \`gcloud auth application-default login\`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key)`,
        EXIT.auth,
      );
    }
  };
}
