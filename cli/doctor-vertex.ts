/**
 * `doctor` on a Vertex AI deployment (GOOGLE_GENAI_USE_VERTEXAI): no key, Application Default
 * Credentials in a project and location; Gemini is reached through Vertex's paths, and a batch goes
 * through Vertex batch prediction from the bucket (platform/gemini/vertex-batch.ts), as the functions
 * do it. The rows keep the Developer API's names so a table reads the same on both.
 */
import type { BatchApi } from '../functions/platform/gemini/batch-api.js';
import type { GeminiCallError } from '../functions/platform/gemini/client.js';
import { type CheckResult, errorText } from './doctor-checks.js';

/** Where Gemini is called on Vertex AI. */
export interface VertexSettings {
  project?: string | undefined;
  location: string;
}

/** The Vertex target the functions would use from these variables (config.ts's rule); none when off. */
export function vertexOf(env: NodeJS.ProcessEnv): VertexSettings | undefined {
  const on = /^(true|1)$/i.test(env.GOOGLE_GENAI_USE_VERTEXAI ?? '');
  return on
    ? { project: env.GOOGLE_CLOUD_PROJECT, location: env.GOOGLE_CLOUD_LOCATION || 'global' }
    : undefined;
}

/** The row the API key takes on the Developer API: on Vertex, the project and location instead. */
export function checkVertexTarget(v: VertexSettings): CheckResult {
  const check = 'Gemini on Vertex AI';
  if (!v.project)
    return {
      check,
      status: 'fail',
      detail: 'GOOGLE_GENAI_USE_VERTEXAI is on but GOOGLE_CLOUD_PROJECT is not set',
      fix: 'export GOOGLE_CLOUD_PROJECT=<the project whose Vertex AI serves Gemini>',
      required: true,
    };
  return {
    check,
    status: 'ok',
    detail: `no key: Application Default Credentials call Vertex AI in ${v.project}, location ${v.location}`,
    required: true,
  };
}

/** What to do about a failed Vertex AI call, by its HTTP status (undefined: no answer at all). */
export function vertexAdvice(err: unknown, v: VertexSettings, model: string): string {
  const status = (err as Partial<GeminiCallError>).httpStatus;
  if (status === undefined)
    return `nothing answered for Vertex AI (${errorText(err)}): check the network, GEMINI_BASE_URL, and ADC`;
  if (status === 401)
    return 'the credentials were refused: run `gcloud auth application-default login` or fix GOOGLE_APPLICATION_CREDENTIALS';
  if (status === 403)
    return `grant roles/aiplatform.user to these credentials and enable aiplatform.googleapis.com in ${v.project}`;
  if (status === 404)
    return `model ${model} is not served in location ${v.location}: fix defaultModel, or GOOGLE_CLOUD_LOCATION (global serves most models)`;
  if (status === 429)
    return 'the shared pool is busy (Dynamic Shared Quota: no per-project limit to raise): try again in a minute';
  return `Vertex AI answered ${status}: try again; if it stays, check the Google Cloud status page`;
}

/**
 * The Vertex batch prediction client `--batch` drives: the functions' own, on the bucket its input
 * and output go through. Undefined without a bucket (the bucket row says what to fix).
 */
export async function vertexBatchApi(
  v: VertexSettings,
  s: {
    bucket?: string | undefined;
    projectId?: string | undefined;
    storageEmulatorHost?: string | undefined;
    geminiBaseUrl?: string | undefined;
  },
): Promise<BatchApi | undefined> {
  if (!s.bucket || !v.project) return undefined;
  const [{ Storage }, { createObjectStore }, { createVertexBatchApi }, { sdkFor }] = await Promise.all([
    import('@google-cloud/storage'),
    import('../functions/platform/object-store.js'),
    import('../functions/platform/gemini/vertex-batch.js'),
    import('../functions/platform/gemini/client.js'),
  ]);
  const storage = new Storage({
    ...(s.projectId ? { projectId: s.projectId } : {}),
    ...(s.storageEmulatorHost ? { apiEndpoint: s.storageEmulatorHost } : {}),
  });
  const sdk = sdkFor({
    apiKey: '',
    vertex: { project: v.project, location: v.location },
    ...(s.geminiBaseUrl ? { baseUrl: s.geminiBaseUrl } : {}),
  });
  return createVertexBatchApi({ sdk, objects: createObjectStore(storage, s.bucket), bucket: s.bucket });
}

/**
 * ADC as Vertex AI needs them: an access token actually minted (what every Vertex call sends), in
 * the project the deployment names (an ADC file need not name one: workload identity, STS).
 */
export async function vertexAdcProject(v: VertexSettings): Promise<string> {
  const { GoogleAuth } = await import('google-auth-library');
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const token = await auth.getAccessToken();
  if (!token) throw new Error('no access token came back');
  return v.project ?? (await auth.getProjectId());
}
