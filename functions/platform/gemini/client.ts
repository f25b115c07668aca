import { ApiError, GoogleGenAI, type ServiceTier } from '@google/genai';
import type { UsageMetadata } from '../../core/cost.js';
import type { GenerateContentRequest } from '../../core/jobs.js';

/** A failed Gemini call: the HTTP status (undefined for timeouts and network faults) and error body. */
export class GeminiCallError extends Error {
  constructor(
    message: string,
    readonly httpStatus: number | undefined,
    readonly body: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GeminiCallError';
  }
}

/** Narrow interface over Gemini: one call, the REST request in, the plain REST response out. */
export interface GeminiClient {
  generate(
    model: string,
    request: GenerateContentRequest,
    options?: GenerateOptions,
  ): Promise<GenerateResult>;
  /**
   * Gemini's own count of the request's `contents` (`models/{m}:countTokens`; it has its own quota,
   * apart from generateContent's). The planner calibrates its estimates with it.
   */
  countTokens(model: string, request: GenerateContentRequest): Promise<number>;
}
/** The service tiers a call may ask for (`config.serviceTier`); standard when left out. */
export type CallTier = 'standard' | 'flex' | 'priority';

export interface GenerateOptions {
  timeoutMs?: number;
  /** Gemini's service tier for this call: `flex` (half price, minutes) or `priority`. */
  serviceTier?: CallTier;
}

export interface GenerateResult {
  /** GenerateContentResponse as plain JSON (what the REST API returned). */
  response: Record<string, unknown>;
  usageMetadata?: UsageMetadata;
  /**
   * The tier that served the call, from the `x-gemini-service-tier` response header (Priority over
   * its cap is served as standard); the tier asked for when the header is absent. Clients that do
   * not tell (fakes) leave it out: the tier asked for served.
   */
  servedTier?: CallTier;
}

export interface GeminiClientOptions {
  /** The Developer API's key; unused on Vertex AI. */
  apiKey: string;
  baseUrl?: string;
  timeoutMs: number;
  /** Call Gemini on Vertex AI in this project and location, with Application Default Credentials. */
  vertex?: { project: string; location: string };
}

/**
 * The Gemini API version of every call: the SDK's (which defaults to `v1` since its major 3) and our
 * own REST calls (batches, files, the resumable upload) go to the same one, where the Batch and
 * Files APIs are documented.
 */
export const GEMINI_API_VERSION = 'v1beta';

/**
 * The Vertex AI API version of every call: the SDK's default for Vertex (`v1beta1`), which serves
 * generateContent, countTokens and batchPredictionJobs alike.
 */
export const VERTEX_API_VERSION = 'v1beta1';

/**
 * The SDK client. On Vertex AI: `vertexai: true` with the project and location passed explicitly
 * (never an API key, which would switch the SDK to Vertex's express mode), so it authenticates with
 * Application Default Credentials (google-auth-library: a bearer token) and calls
 * `{base}/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`.
 */
export function sdkFor(options: Omit<GeminiClientOptions, 'timeoutMs'>): GoogleGenAI {
  const http = options.baseUrl ? { httpOptions: { baseUrl: options.baseUrl } } : {};
  if (options.vertex)
    return new GoogleGenAI({ vertexai: true, ...options.vertex, apiVersion: VERTEX_API_VERSION, ...http });
  return new GoogleGenAI({
    vertexai: false,
    apiKey: options.apiKey,
    apiVersion: GEMINI_API_VERSION,
    ...http,
  });
}

/** Builds the client on `@google/genai`; `baseUrl` points it at the local stand-in. */
export function createGeminiClient(options: GeminiClientOptions, sdk?: GoogleGenAI): GeminiClient {
  const ai = sdk ?? sdkFor(options);
  return {
    async countTokens(model, request) {
      try {
        const res = await ai.models.countTokens({
          model,
          contents: request.contents as never,
          config: { httpOptions: { timeout: Math.min(options.timeoutMs, 30_000) } },
        });
        return res.totalTokens ?? 0;
      } catch (err) {
        throw toCallError(err);
      }
    },
    async generate(model, request, callOptions) {
      const {
        contents,
        systemInstruction,
        generationConfig,
        safetySettings,
        tools,
        toolConfig,
        cachedContent,
      } = request;
      try {
        const res = await ai.models.generateContent({
          model,
          contents: contents as never,
          config: {
            ...(generationConfig ?? {}),
            ...(systemInstruction ? { systemInstruction: systemInstruction as never } : {}),
            ...(safetySettings ? { safetySettings: safetySettings as never } : {}),
            ...(tools ? { tools: tools as never } : {}),
            ...(toolConfig ? { toolConfig: toolConfig as never } : {}),
            ...(cachedContent ? { cachedContent } : {}),
            ...(callOptions?.serviceTier ? { serviceTier: callOptions.serviceTier as ServiceTier } : {}),
            httpOptions: { timeout: callOptions?.timeoutMs ?? options.timeoutMs },
          },
        });
        const header = res.sdkHttpResponse?.headers?.[SERVICE_TIER_HEADER];
        const { sdkHttpResponse: _drop, ...plain } = JSON.parse(JSON.stringify(res)) as Record<
          string,
          unknown
        >;
        return {
          response: plain,
          usageMetadata: plain.usageMetadata as GenerateResult['usageMetadata'],
          servedTier: servedTierOf(header, callOptions?.serviceTier),
        };
      } catch (err) {
        throw toCallError(err);
      }
    },
  };
}

/** The response header naming the tier that served a call (the Priority inference page). */
export const SERVICE_TIER_HEADER = 'x-gemini-service-tier';

/** The tier a response header names; the one asked for (standard by default) when it names none we know. */
export function servedTierOf(header: string | undefined, asked: CallTier | undefined): CallTier {
  const named = header?.trim().toLowerCase();
  return named === 'standard' || named === 'flex' || named === 'priority' ? named : (asked ?? 'standard');
}

/** Normalises what the SDK throws: `ApiError` (status + JSON body in its message), aborts, network errors. */
export function toCallError(err: unknown): GeminiCallError {
  if (err instanceof ApiError) {
    let body: unknown;
    try {
      body = JSON.parse(err.message);
    } catch {
      body = { error: { code: err.status, message: err.message } };
    }
    return new GeminiCallError(`Gemini answered ${err.status}`, err.status, body, { cause: err });
  }
  const name = (err as { name?: string })?.name;
  const message =
    name === 'AbortError' || name === 'TimeoutError'
      ? 'Gemini did not answer in time'
      : String((err as Error)?.message ?? err);
  return new GeminiCallError(message, undefined, undefined, { cause: err });
}
