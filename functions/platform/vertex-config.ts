import { z } from 'zod';
import { adaptiveEverywhere } from '../core/quotas-adaptive.js';

/**
 * The Vertex AI part of the environment, read by config.ts with everything else. The names are the
 * `@google/genai` SDK's own (it reads them itself when a client is built without options; we read
 * them here and pass them explicitly, so one schema validates them): `GOOGLE_GENAI_USE_VERTEXAI`,
 * `GOOGLE_CLOUD_PROJECT` (already the deployment's project) and `GOOGLE_CLOUD_LOCATION`.
 * Credentials are Application Default Credentials, found by google-auth-library as always
 * (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata server of the function's service account).
 */
export const vertexEnv = {
  /** `true`: call Gemini on Vertex AI (ADC, a project and a location) instead of the Developer API. */
  GOOGLE_GENAI_USE_VERTEXAI: z
    .string()
    .regex(/^(true|false|1|0)$/i, 'expected true or false')
    .default('false')
    .transform((v) => v.toLowerCase() === 'true' || v === '1'),
  /**
   * The Vertex AI location: `global` (the SDK's default, and where Google steers Dynamic Shared
   * Quota traffic) or a region such as `us-central1`.
   */
  GOOGLE_CLOUD_LOCATION: z
    .string()
    .regex(/^[a-z][a-z0-9-]{1,62}$/, 'expected a location such as global or us-central1')
    .default('global'),
};

export const VERTEX_HOW_TO_FIX: Record<string, string> = {
  GOOGLE_GENAI_USE_VERTEXAI: 'set it to true to call Gemini on Vertex AI, or leave it unset',
  GOOGLE_CLOUD_LOCATION: 'set it to global or the region of your Vertex AI endpoint',
};

/** Where Gemini is called on Vertex AI. */
export interface VertexTarget {
  project: string;
  location: string;
}

/** The Vertex target when `GOOGLE_GENAI_USE_VERTEXAI` is true; nothing otherwise. */
export function vertexFrom(e: {
  GOOGLE_GENAI_USE_VERTEXAI: boolean;
  GOOGLE_CLOUD_PROJECT: string;
  GOOGLE_CLOUD_LOCATION: string;
}): { vertex?: VertexTarget } {
  return e.GOOGLE_GENAI_USE_VERTEXAI
    ? { vertex: { project: e.GOOGLE_CLOUD_PROJECT, location: e.GOOGLE_CLOUD_LOCATION } }
    : {};
}

/**
 * The quotas a deployment plans with: on Vertex AI every model's rate adapts (Dynamic Shared Quota
 * has no per-project RPM; `rpm` is the ceiling); elsewhere as the file says. Batch jobs go through
 * Vertex batch prediction there (platform/gemini/vertex-batch.ts).
 */
export function quotasFor<Q extends Parameters<typeof adaptiveEverywhere>[0]>(quotas: Q, vertex: boolean): Q {
  return vertex ? adaptiveEverywhere(quotas) : quotas;
}
