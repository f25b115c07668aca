import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { emailList, httpUrl } from './env-fields.js';

/**
 * The identity part of the environment, read by config.ts with everything else: who may call, how
 * ID tokens are verified, and how config.ts derives the identity settings it cannot take as they
 * are from the environment.
 */
export const identityEnv = {
  /** Identities (emails) that may read every job, bucket jobs included; comma-separated. */
  FANOUT_ADMINS: emailList,
  /**
   * The `aud` values ingest accepts in callers' ID tokens, comma-separated: its own URL (what
   * `gcloud auth print-identity-token --audiences=URL` and the CLI ask for), and any other name it is
   * called by. A URL is accepted with and without a trailing slash.
   */
  FANOUT_AUDIENCES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  /** An issuer accepted besides Google's: the local cloud's own (infra/local/id-issuer.ts). */
  FANOUT_ID_ISSUER: httpUrl.optional(),
  /** Where ID tokens' signing keys are (a PEM map keyed by `kid`); Google's by default. */
  FANOUT_ID_CERTS_URL: httpUrl.optional(),
  /**
   * `true` in the cloud: accept an ID token whose signature Google's front removed after verifying
   * it (platform/id-token.ts). Never set locally, where every token is verified whole.
   */
  FANOUT_ACCEPT_STRIPPED_TOKENS: z.enum(['true', 'false']).default('false'),
  /** The tick function's URL: the audience of Cloud Scheduler's OIDC token. */
  TICK_URL: httpUrl.optional(),
  /** The service account Cloud Scheduler signs tick's OIDC token as. */
  SCHEDULER_SERVICE_ACCOUNT: z.email({ error: 'expected a service account email' }).optional(),
};

export const IDENTITY_HOW_TO_FIX: Record<string, string> = {
  FANOUT_ID_ISSUER: 'unset it in the cloud; locally `npm run dev` sets it to its own issuer',
  FANOUT_ID_CERTS_URL: "unset it in the cloud (Google's keys); locally `npm run dev` sets it",
  TICK_URL: 'set it to the HTTPS URL of the tick function (Terraform sets it)',
  SCHEDULER_SERVICE_ACCOUNT: 'set it to the service account Cloud Scheduler signs OIDC tokens with',
};

type IdentityEnv = z.output<z.ZodObject<typeof identityEnv>>;

/** How ID tokens are verified (`Config.identity`); stripped tokens are never accepted locally. */
export function identityFrom(
  e: IdentityEnv,
  local: boolean,
): { audiences: string[]; extraIssuers: string[]; certsUrl?: string; acceptStripped: boolean } {
  return {
    audiences: withAndWithoutSlash(e.FANOUT_AUDIENCES),
    extraIssuers: e.FANOUT_ID_ISSUER ? [e.FANOUT_ID_ISSUER] : [],
    ...(e.FANOUT_ID_CERTS_URL ? { certsUrl: e.FANOUT_ID_CERTS_URL } : {}),
    acceptStripped: e.FANOUT_ACCEPT_STRIPPED_TOKENS === 'true' && !local,
  };
}

/** Each audience as given, and a URL also with (or without) its trailing slash. */
export function withAndWithoutSlash(audiences: string[]): string[] {
  const all = audiences.flatMap((a) =>
    /^https?:\/\//.test(a) ? [a.replace(/\/+$/, ''), `${a.replace(/\/+$/, '')}/`] : [a],
  );
  return [...new Set(all)];
}

/**
 * Page tokens' key: PAGE_TOKEN_SECRET, else one derived from the callback key (its own label, so
 * neither reveals the other), else a fixed key locally.
 */
export function pageTokenKey(
  own: string | undefined,
  callback: string | undefined,
  local: boolean,
): { pageTokenKey: string } {
  if (own) return { pageTokenKey: own };
  if (callback)
    return { pageTokenKey: createHmac('sha256', callback).update('gemini-fanout page tokens').digest('hex') };
  // Neither key bound in the cloud: a key of this instance, so a token is good only where it was made.
  return {
    pageTokenKey: local ? 'local-page-token-key-for-the-local-cloud-only' : randomBytes(32).toString('hex'),
  };
}
