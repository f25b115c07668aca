import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { StandInHttpError } from './errors.js';
import { readBody, sendJson } from './http.js';

/**
 * The stand-in's Vertex AI mode: the paths, auth and throttling of Gemini on Vertex AI, for the
 * `@google/genai` SDK with `vertexai: true` pointed here by `httpOptions.baseUrl`.
 *
 * - Paths: `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}` (what
 *   js-genai builds: `projects/${project}/locations/${location}/publishers/google/models/${model}`).
 * - Auth: a bearer access token and nothing else (an API key is no credential here). Tokens come
 *   from this stand-in's Security Token Service (`POST /v1/token`, sts.googleapis.com's path and
 *   RFC 8693 form), which google-auth-library calls for an `external_account` ADC file: the local
 *   cloud writes one whose subject token is `vertex.subjectToken`, so the SDK's own ADC code runs
 *   unchanged and nothing calls Google. No token or an unknown or expired one: 401 UNAUTHENTICATED;
 *   a token for another project than `vertex.project`: 403 PERMISSION_DENIED.
 * - Throttling: Dynamic Shared Quota has no per-project RPM; "if resources aren't available when you
 *   make a request, Vertex AI returns a 429" (Vertex AI, Error code 429; Dynamic shared quota
 *   pages). How the shared pool's capacity moves is not documented. The hypothesis modelled here, a
 *   setting: each model's pool admits `rpm × (1 + swing × sin(2πt / periodMs))` requests a minute,
 *   counted over the last `windowMs` (a short window: a burst finds the pool busy sooner than a
 *   minute's average would say). A refused request consumes nothing and is answered Vertex's bare
 *   429 (no QuotaFailure, no RetryInfo), as the public reports show it (gemini-cli #15911, #14831).
 */

export const vertexSchema = z.object({
  /** The project Vertex calls must name (its tokens are for it alone); null: any project. */
  project: z.string().nullable().default(null),
  /** The subject token the STS endpoint exchanges (the ADC file's); null: Vertex mode off. */
  subjectToken: z.string().min(16).nullable().default(null),
  /** Where batch prediction reads and writes `gs://` objects: the storage emulator's URL. */
  storageUrl: z.string().nullable().default(null),
  /** How long an issued access token is good for (Google's: an hour). */
  tokenTtlMs: z.number().int().positive().default(3_600_000),
  /** The shared pool, per model (see the module comment); `rpm: null` never throttles. */
  pool: z
    .object({
      rpm: z.number().positive().nullable().default(null),
      swing: z.number().min(0).lt(1).default(0),
      periodMs: z.number().int().positive().default(300_000),
      windowMs: z.number().int().min(1000).max(60_000).default(10_000),
    })
    .prefault({}),
});
export type VertexConfig = z.infer<typeof vertexSchema>;

/** `/v1beta1/projects/p/locations/l/publishers/google/models/m:generateContent` and its kin. */
export const VERTEX_MODEL_ACTION =
  /^\/(v1|v1beta1)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):([A-Za-z]+)$/;
/** Where google-auth-library exchanges an external account's subject token (sts.googleapis.com). */
export const STS_PATH = '/v1/token';

const AUTH_HELP =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

/** 401 for a Vertex call without a bearer token (Google's front end's wording). */
export function missingCredential(): StandInHttpError {
  return new StandInHttpError(
    401,
    'UNAUTHENTICATED',
    `Request is missing required authentication credential. ${AUTH_HELP}`,
  );
}

/** 401 for a bearer token Google did not issue, or one past its expiry. */
export function invalidCredential(): StandInHttpError {
  return new StandInHttpError(
    401,
    'UNAUTHENTICATED',
    `Request had invalid authentication credentials. ${AUTH_HELP}`,
  );
}

/** 403 for a caller without `aiplatform.endpoints.predict` on the resource (Vertex's IAM wording). */
export function predictDenied(resource: string): StandInHttpError {
  return new StandInHttpError(
    403,
    'PERMISSION_DENIED',
    `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/${resource}' (or it may not exist).`,
  );
}

/** Vertex AI's pay-as-you-go 429: the shared pool is busy. No details at all. */
export function poolBusy(): StandInHttpError {
  return new StandInHttpError(
    429,
    'RESOURCE_EXHAUSTED',
    'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
  );
}

/** A parsed Vertex model path. */
export interface VertexCall {
  version: string;
  project: string;
  location: string;
  model: string;
  action: string;
  /** `projects/{p}/locations/{l}/publishers/google/models/{m}`. */
  resource: string;
}

export function parseVertexPath(path: string): VertexCall | undefined {
  const m = VERTEX_MODEL_ACTION.exec(path);
  if (!m) return undefined;
  const [, version = 'v1beta1', project = '', location = '', rawModel = '', action = ''] = m;
  const model = decodeURIComponent(rawModel);
  return {
    version,
    project,
    location,
    model,
    action,
    resource: `projects/${project}/locations/${location}/publishers/google/models/${model}`,
  };
}

/** Access tokens issued, the shared pools' admissions, and the checks of both. */
export class VertexGate {
  private readonly tokens = new Map<string, number>();
  private readonly admitted = new Map<string, number[]>();

  constructor(
    private readonly clock: () => number,
    private readonly config: () => VertexConfig,
  ) {}

  /** Whether Vertex mode is on (a subject token to exchange is configured). */
  get enabled(): boolean {
    return this.config().subjectToken !== null;
  }

  /** `POST /v1/token`: RFC 8693 token exchange of the configured subject token. */
  async exchange(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    const grant = form.get('grant_type');
    if (grant !== 'urn:ietf:params:oauth:grant-type:token-exchange') {
      sendJson(res, 400, {
        error: 'unsupported_grant_type',
        error_description: `Invalid grant_type: ${grant}`,
      });
      return;
    }
    if (!form.get('audience') || !form.get('subject_token_type')) {
      sendJson(res, 400, {
        error: 'invalid_request',
        error_description: 'audience and subject_token_type are required',
      });
      return;
    }
    const expected = this.config().subjectToken;
    if (!expected || form.get('subject_token') !== expected) {
      sendJson(res, 400, { error: 'invalid_grant', error_description: 'The subject token is invalid.' });
      return;
    }
    const token = `ya29.local-${randomBytes(24).toString('base64url')}`;
    const ttl = this.config().tokenTtlMs;
    this.tokens.set(token, this.clock() + ttl);
    sendJson(res, 200, {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: Math.floor(ttl / 1000),
    });
  }

  /** Throws 401/403 unless the request carries a live token of ours for the call's project. */
  authorize(req: IncomingMessage, call: VertexCall): void {
    const header = req.headers.authorization;
    const token = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
    if (!token) throw missingCredential();
    const expiry = this.tokens.get(token);
    if (expiry === undefined || expiry <= this.clock()) throw invalidCredential();
    const project = this.config().project;
    if (project !== null && call.project !== project) throw predictDenied(call.resource);
  }

  /** The pool's capacity for a model at `nowMs`, in requests a minute (undefined: unlimited). */
  capacityRpm(nowMs: number): number | undefined {
    const { rpm, swing, periodMs } = this.config().pool;
    if (rpm === null) return undefined;
    return rpm * (1 + swing * Math.sin((2 * Math.PI * nowMs) / periodMs));
  }

  /** Admits a request of `model` into its shared pool, or throws Vertex's 429. */
  admit(model: string): void {
    const now = this.clock();
    const capacity = this.capacityRpm(now);
    if (capacity === undefined) return;
    const { windowMs } = this.config().pool;
    const recent = (this.admitted.get(model) ?? []).filter((t) => t > now - windowMs);
    if (recent.length + 1 > Math.max(1, Math.floor((capacity * windowMs) / 60_000))) {
      this.admitted.set(model, recent);
      throw poolBusy();
    }
    recent.push(now);
    this.admitted.set(model, recent);
  }

  reset(): void {
    this.admitted.clear();
  }
}

/**
 * What Vertex adds to a generateContent answer: `createTime`, and `trafficType` in usageMetadata
 * (`ON_DEMAND` for pay-as-you-go; the GenerateContentResponse reference).
 */
export function asVertexResponse(response: Record<string, unknown>, nowMs: number): Record<string, unknown> {
  const usage = response.usageMetadata as Record<string, unknown> | undefined;
  return {
    ...response,
    createTime: new Date(nowMs).toISOString(),
    ...(usage ? { usageMetadata: { ...usage, trafficType: 'ON_DEMAND' } } : {}),
  };
}
