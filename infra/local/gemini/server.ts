import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrng, type Prng } from '../prng.js';
import { BatchStore } from './batches.js';
import {
  type GeminiStandInConfig,
  type GeminiStandInConfigPatch,
  mergeConfig,
  parseConfig,
  StandInConfigError,
} from './config.js';
import {
  deadlineExceeded,
  fileNotFound,
  internalError,
  invalidArgument,
  missingApiKey,
  modelNotFound,
  requestTooLarge,
  StandInHttpError,
  unavailableError,
} from './errors.js';
import { capacityFault, latencyFor, markerFault, quotaFault, randomFault } from './faults.js';
import { FileStore, fileIdOf, fileNotActive } from './files.js';
import {
  type AnswerOptions,
  answerShape,
  buildResponse,
  buildStreamChunks,
  fileUris,
  promptText,
  validateGenerateRequest,
} from './generate.js';
import {
  MAX_JSON_BODY_BYTES,
  parseJson,
  readBody,
  sendError,
  sendJson,
  sendUnknownRoute,
  sleep,
} from './http.js';
import { ImplicitCache } from './implicit-cache.js';
import {
  capacityExhaustedError,
  type QuotaErrorShape,
  type QuotaKind,
  QuotaLedger,
  quotaExceededError,
  violation,
} from './quota.js';
import { billedTokens, billedUsd, type SpendStats, SpendWindow } from './spend.js';
import { type StandInStats, StatsRecorder } from './stats.js';
import {
  flexShed,
  flexWaitMs,
  priorityLimits,
  requestedTier,
  SERVICE_TIER_HEADER,
  type ServiceTier,
} from './tiers.js';
import { countRequestTokens } from './tokens.js';
import { asVertexResponse, parseVertexPath, STS_PATH, type VertexCall, VertexGate } from './vertex.js';
import { BATCH_JOBS_PATH, VertexBatchJobs } from './vertex-batch.js';
import { type WebhookDelivery, WebhookSender } from './webhooks.js';

/** Options of `startGeminiStandIn`: any part of the configuration, plus where and how to run. */
export type GeminiStandInOptions = GeminiStandInConfigPatch & {
  /** Port to listen on; 0 (the default) lets the OS pick a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Where uploaded and generated files live; default a fresh temp dir, removed on close. */
  dataDir?: string;
  /** Clock (epoch ms) behind quota windows, stats and timestamps; tests may pass a fake one. */
  clock?: () => number;
};

/** What `GET /__standin/stats` and `stats()` return. */
export type GeminiStandInStats = StandInStats & {
  /** The project's spend limit and the most any rolling window held (spend.ts). */
  spend: SpendStats;
  files: { count: number; bytes: number };
  batches: Record<string, number>;
};

/** A running stand-in. */
export interface GeminiStandIn {
  /** Base URL for the SDK's `httpOptions.baseUrl` / GEMINI_BASE_URL, e.g. `http://127.0.0.1:8790`. */
  readonly url: string;
  readonly port: number;
  /** The current configuration, defaults filled in. */
  config(): GeminiStandInConfig;
  /** Deep-merges a partial configuration (same as `POST /__standin/config`); returns the result. */
  configure(patch: GeminiStandInConfigPatch): GeminiStandInConfig;
  /** What the stand-in saw (same as `GET /__standin/stats`). */
  stats(): GeminiStandInStats;
  /** Clears stats and quota windows and reseeds the PRNG (same as `POST /__standin/reset`). */
  reset(): void;
  /** Every batch webhook delivery attempt so far, and how it was answered (webhooks.ts). */
  webhookDeliveries(): WebhookDelivery[];
  /** Stops listening, drops open connections (held requests included) and removes its temp dir. */
  close(): Promise<void>;
}

const VERSION = '(v1beta|v1)';
const ROUTES = {
  modelAction: new RegExp(`^/${VERSION}/models/([^/:]+):([A-Za-z]+)$`),
  model: new RegExp(`^/${VERSION}/models/([^/:]+)$`),
  models: new RegExp(`^/${VERSION}/models$`),
  upload: new RegExp(`^/upload/${VERSION}/files$`),
  files: new RegExp(`^/${VERSION}/files$`),
  file: new RegExp(`^/${VERSION}/files/([^/:]+)$`),
  download: new RegExp(`^(?:/download)?/${VERSION}/files/([^/:]+):download$`),
  batches: new RegExp(`^/${VERSION}/batches$`),
  batch: new RegExp(`^/${VERSION}/batches/([^/:]+)$`),
  batchCancel: new RegExp(`^/${VERSION}/batches/([^/:]+):cancel$`),
};

/** Default quota values quoted by `[[fault:429…]]` markers when the model has no configured limit. */
const MARKER_QUOTA_VALUES: Record<QuotaKind, number> = { rpm: 1000, tpm: 1_000_000, rpd: 10_000 };

/**
 * Starts the local Gemini stand-in: an HTTP server the official `@google/genai` client (with
 * `httpOptions.baseUrl` set to `url`) cannot tell from the Gemini Developer API for what this
 * project uses. See the module files for each piece: generate.ts (answers), tokens.ts (token rule),
 * quota.ts (429s), faults.ts (injected faults and prompt markers), files.ts, batches.ts.
 */
export async function startGeminiStandIn(options: GeminiStandInOptions = {}): Promise<GeminiStandIn> {
  const { port = 0, host = '127.0.0.1', dataDir, clock = Date.now, ...patch } = options;
  let config = parseConfig(patch);
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'gemini-standin-')));
  if (dataDir) await mkdir(dataDir, { recursive: true });
  let prng: Prng = createPrng(config.seed);
  let url = '';
  const closing = new AbortController();
  // Every in-flight request listens for close; the default cap of 10 listeners would warn.
  setMaxListeners(0, closing.signal);
  const ledger = new QuotaLedger(clock, () => config.quota);
  /** Priority's own windows (its capped share of each limit); other traffic is the ordinary ledger's. */
  const priorityLedger = new QuotaLedger(clock, () => ({ ...config.quota, otherTraffic: {} }));
  const stats = new StatsRecorder(clock);
  const spendWindow = new SpendWindow(clock, () => config.spend);
  const implicitCache = new ImplicitCache(clock, () => config.implicitCache);
  /** Vertex AI mode (vertex.ts): its tokens and shared pools. */
  const vertex = new VertexGate(clock, () => config.vertex);
  const files = new FileStore(
    dir,
    () => url,
    clock,
    () => config.files,
  );
  const webhooks = new WebhookSender(() => config);
  const batches = new BatchStore({
    files,
    config: () => config,
    prng: () => prng,
    clock,
    stats,
    onEnded: (resource) => webhooks.batchEnded(resource),
  });
  const fileInfo = (uri: string) => files.info(uri);
  const vertexBatches = new VertexBatchJobs({
    clock,
    storageUrl: () => config.vertex.storageUrl,
    timings: () => config.batch,
    answer(model, raw) {
      const request = validateGenerateRequest(raw);
      const tokens = countRequestTokens(request, config.tokens, fileInfo);
      const response = buildResponse(model, request, tokens, answerOptions(model, request, tokens.total));
      return asVertexResponse(response, clock());
    },
  });

  function knownModel(model: string, version: string, method: string): void {
    if (!config.models.includes(model)) throw modelNotFound(model, version, method);
  }

  /** A JSON body, refused upstream's way past `limit` bytes (`null`: the stand-in's own 64 MiB cap). */
  async function readJson(req: IncomingMessage, limit: number | null): Promise<unknown> {
    return parseJson(
      limit === null ? await readBody(req, MAX_JSON_BODY_BYTES) : await readBody(req, limit, requestTooLarge),
    );
  }

  /** The shape of a quota 429: a share of them bare or without RetryInfo, drawn only when configured. */
  function quotaErrorShape(): QuotaErrorShape {
    const { bareShare, noRetryInfoShare } = config.quota;
    if (bareShare + noRetryInfoShare <= 0) return 'full';
    const r = prng();
    if (r < bareShare) return 'bare';
    return r < bareShare + noRetryInfoShare ? 'no-retry-info' : 'full';
  }

  function answerOptions(
    model: string,
    request: Record<string, unknown>,
    promptTokens: number,
    cachedPrefix = 0,
  ): AnswerOptions {
    const shape = answerShape(model, request, promptTokens, config.answers, prng);
    // A warm prefix (implicit-cache.ts) is served from the cache, unless a marker said more.
    if (cachedPrefix > shape.cached) shape.cached = cachedPrefix;
    return {
      shape,
      rule: config.tokens,
      tokenDetails: config.answers.tokenDetails,
    };
  }

  async function generate(
    req: IncomingMessage,
    res: ServerResponse,
    version: string,
    model: string,
    stream: boolean,
    onVertex = false,
  ) {
    const method = stream ? 'streamGenerateContent' : 'generateContent';
    const body = await readJson(req, config.limits.maxRequestBytes);
    knownModel(model, version, method);
    const request = validateGenerateRequest(body);
    const tier = requestedTier(request);
    for (const uri of fileUris(request)) {
      const id = fileIdOf(uri);
      const file = id === undefined ? undefined : files.get(id);
      if (!file) throw fileNotFound(id ?? uri);
      if (files.stateOf(file) !== 'ACTIVE') throw fileNotActive(file.id);
    }
    stats.arrived(model);
    const marker = markerFault(promptText(request));
    if (marker === '400') {
      stats.fault(model, '400');
      throw invalidArgument('Request contains an invalid argument.');
    }
    if (marker === '429-capacity') {
      stats.rejected(model, ['capacity']);
      throw capacityExhaustedError();
    }
    if (marker === '429' || marker === '429-tpm' || marker === '429-day' || marker === '429-no-retry') {
      const kind: QuotaKind = marker === '429-tpm' ? 'tpm' : marker === '429-day' ? 'rpd' : 'rpm';
      const limit = config.quotas[model]?.[kind] ?? MARKER_QUOTA_VALUES[kind];
      const v = violation(kind, model, config.quotaTier, limit, config.faults.markerRetryDelaySeconds);
      stats.rejected(model, [v.quotaId]);
      throw quotaExceededError([v], marker === '429-no-retry' ? 'no-retry-info' : 'full');
    }
    if (capacityFault(config, prng, model)) {
      stats.rejected(model, ['capacity']);
      throw capacityExhaustedError();
    }
    if (quotaFault(config, prng, model)) {
      const v = violation(
        'rpm',
        model,
        config.quotaTier,
        config.quotas[model]?.rpm ?? MARKER_QUOTA_VALUES.rpm,
        1,
      );
      stats.rejected(model, [v.quotaId]);
      throw quotaExceededError([v], 'full');
    }
    // The one count: promptTokenCount, the TPM window and countTokens all come from it.
    const tokens = countRequestTokens(request, config.tokens, fileInfo);
    const cachedPrefix = implicitCache.lookup(model, request, tokens.total, config.tokens);
    // With a spend limit, the answer is shaped now: its cost decides whether it is admitted.
    const early =
      config.spend.limitUsd === null ? undefined : answerOptions(model, request, tokens.total, cachedPrefix);
    const spendUsd = early
      ? billedUsd(config.spend, model, tier, billedTokens(request, tokens.total, early))
      : 0;
    const overSpend = early ? spendWindow.check(spendUsd) : undefined;
    // Vertex AI: no per-project limits, a shared pool that may be busy (vertex.ts).
    if (onVertex) admitToPool(model);
    const violations = [
      ...(onVertex ? [] : ledger.check(model, tokens.total, config.quotas[model], config.quotaTier)),
      ...(overSpend ? [overSpend] : []),
    ];
    if (violations.length > 0) {
      stats.rejected(
        model,
        violations.map((v) => v.quotaId),
      );
      throw quotaExceededError(violations, quotaErrorShape());
    }
    if (!onVertex) ledger.admit(model, tokens.total);
    spendWindow.admit(spendUsd);
    implicitCache.record(model, request);
    stats.admitted(model, tokens.total);
    const served = serveTier(tier, model, tokens.total);
    const tierHeader = { [SERVICE_TIER_HEADER]: served };

    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const signal = AbortSignal.any([closing.signal, gone.signal]);
    await sleep(latencyFor(config, model, prng), signal);
    if (served === 'flex') {
      if (flexShed(config, prng, promptText(request))) {
        stats.fault(model, '503');
        throw unavailableError();
      }
      await sleep(flexWaitMs(config, prng), signal);
    }
    const fault = marker ?? randomFault(config, prng, model);
    if (fault === '500' || fault === '503') {
      stats.fault(model, fault);
      throw fault === '500' ? internalError() : unavailableError();
    }
    if (fault === 'timeout') {
      stats.fault(model, 'timeout');
      await sleep(config.faults.timeoutMs, signal);
      throw deadlineExceeded();
    }
    if (fault === 'hang') {
      stats.fault(model, 'hang');
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      throw deadlineExceeded();
    }
    if (fault === 'malformed') {
      stats.fault(model, 'malformed');
      const broken = stream
        ? 'data: {"candidates": [{"content": {"role": "model", "parts": [{"text": "ec\r\n\r\n'
        : '{"candidates": [{"content": {"role": "model", "parts": [{"text": "ec';
      res.writeHead(200, {
        'content-type': stream ? 'text/event-stream' : 'application/json; charset=UTF-8',
      });
      res.end(broken);
      return;
    }
    const options = early ?? answerOptions(model, request, tokens.total, cachedPrefix);
    if (fault === 'truncated') {
      // Generated (and billed) upstream, but half of it reaches the client before the connection drops.
      stats.fault(model, 'truncated');
      const body = Buffer.from(JSON.stringify(buildResponse(model, request, tokens, options)));
      res.writeHead(200, {
        'content-type': 'application/json; charset=UTF-8',
        'content-length': body.length,
      });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return;
    }
    if (!stream) {
      const response = buildResponse(model, request, tokens, options);
      stats.succeeded(model, outputTokens(response));
      const hash = createHash('sha256')
        .update(JSON.stringify(request.contents ?? []))
        .digest('hex');
      // Delivered only when every byte went out before the client went away.
      res.once('finish', () => {
        if (!gone.signal.aborted) stats.delivered(model, hash, promptText(request));
      });
      sendJson(res, 200, onVertex ? asVertexResponse(response, clock()) : response, tierHeader);
      return;
    }
    const chunks = buildStreamChunks(model, request, tokens, config.streamChunks, options);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...tierHeader });
    for (const chunk of chunks) {
      if (res.destroyed) return;
      if (!res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`)) {
        // A client that goes away stops draining; 'close' ends the wait as well.
        await new Promise((r) => {
          res.once('drain', r);
          res.once('close', r);
        });
      }
    }
    res.end();
    stats.succeeded(model, outputTokens(chunks[chunks.length - 1] ?? {}));
  }

  function admitToPool(model: string): void {
    try {
      vertex.admit(model);
    } catch (error) {
      stats.rejected(model, ['vertex-shared-pool']);
      throw error;
    }
  }

  /** A Vertex AI model call: its bearer token first, then the same answers as the Developer API's. */
  async function vertexCall(req: IncomingMessage, res: ServerResponse, call: VertexCall): Promise<void> {
    vertex.authorize(req, call);
    const { version, model, action } = call;
    if (action === 'generateContent') return generate(req, res, version, model, false, true);
    if (action === 'streamGenerateContent') return generate(req, res, version, model, true, true);
    if (action === 'countTokens') return countTokens(req, res, version, model);
    req.resume();
    sendUnknownRoute(res, `/${version}/${call.resource}:${action}`);
  }

  /** Vertex batch prediction (vertex-batch.ts), behind the same bearer tokens. */
  async function vertexBatchRoute(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    query: URLSearchParams,
    [, version = 'v1beta1', parent = '', project = '', id, cancel]: RegExpExecArray,
  ): Promise<void> {
    vertex.authorize(req, { version, project, location: '', model: '', action: '', resource: parent });
    if (method === 'POST' && !id)
      return sendJson(res, 200, vertexBatches.create(parent, await readJson(req, null)));
    req.resume();
    if (method === 'GET' && id && !cancel) return sendJson(res, 200, vertexBatches.get(parent, id));
    if (method === 'GET' && !id) {
      const size = query.has('pageSize') ? Number(query.get('pageSize')) : undefined;
      return sendJson(res, 200, vertexBatches.list(parent, size, query.get('pageToken') ?? undefined));
    }
    if (method === 'POST' && id && cancel) {
      vertexBatches.cancel(parent, id);
      return sendJson(res, 200, {});
    }
    sendUnknownRoute(res, path0(req));
  }

  /**
   * The tier that serves an admitted request: Priority while its own capped windows have room (and
   * then counted in them), standard beyond; Flex and standard as asked.
   */
  function serveTier(tier: ServiceTier, model: string, tokens: number): ServiceTier {
    if (tier !== 'priority') return tier;
    const limits = priorityLimits(config.quotas[model], config.serviceTiers.priority.limitShare);
    if (priorityLedger.check(model, tokens, limits, config.quotaTier).length > 0) return 'standard';
    priorityLedger.admit(model, tokens);
    return 'priority';
  }

  async function countTokens(req: IncomingMessage, res: ServerResponse, version: string, model: string) {
    const body = await readJson(req, config.limits.maxRequestBytes);
    knownModel(model, version, 'countTokens');
    const inner =
      typeof body === 'object' && body !== null && 'generateContentRequest' in body
        ? (body as { generateContentRequest: unknown }).generateContentRequest
        : body;
    const request = validateGenerateRequest(inner, 'CountTokensRequest');
    stats.countTokens(model);
    const count = countRequestTokens(request, config.tokens, fileInfo);
    sendJson(res, 200, {
      totalTokens: count.total,
      ...(config.answers.tokenDetails && count.details.length > 0
        ? { promptTokensDetails: count.details }
        : {}),
    });
  }

  type RouteContext = {
    req: IncomingMessage;
    res: ServerResponse;
    match: RegExpExecArray;
    query: URLSearchParams;
    pageSize: number | undefined;
    pageToken: string | undefined;
  };
  /** A route handler; returning `false` lets the next matching route try (unknown model actions). */
  type Route = { method: string; pattern: RegExp; handle: (c: RouteContext) => Promise<unknown> | unknown };

  const routes: Route[] = [
    {
      method: 'POST',
      pattern: ROUTES.modelAction,
      async handle({ req, res, match }) {
        const [, version = 'v1beta', rawModel = '', action] = match;
        const model = decodeURIComponent(rawModel);
        if (action === 'generateContent') return generate(req, res, version, model, false);
        if (action === 'streamGenerateContent') return generate(req, res, version, model, true);
        if (action === 'countTokens') return countTokens(req, res, version, model);
        if (action !== 'batchGenerateContent') return false;
        const body = await readJson(req, config.limits.maxBatchRequestBytes);
        knownModel(model, version, 'batchGenerateContent');
        sendJson(res, 200, await batches.create(model, body));
      },
    },
    {
      method: 'GET',
      pattern: ROUTES.model,
      handle({ res, match }) {
        const model = decodeURIComponent(match[2] ?? '');
        knownModel(model, match[1] ?? 'v1beta', 'get');
        sendJson(res, 200, modelResource(model));
      },
    },
    {
      method: 'GET',
      pattern: ROUTES.models,
      handle: ({ res }) => sendJson(res, 200, { models: config.models.map(modelResource) }),
    },
    {
      method: 'POST',
      pattern: ROUTES.upload,
      handle({ req, res, match, query }) {
        const uploadId = query.get('upload_id');
        if (uploadId) return files.continueUpload(req, res, uploadId);
        return files.startUpload(req, res, match[1] ?? 'v1beta');
      },
    },
    {
      method: 'GET',
      pattern: ROUTES.files,
      handle: (c) => sendJson(c.res, 200, files.list(c.pageSize, c.pageToken)),
    },
    {
      method: 'GET',
      pattern: ROUTES.download,
      handle({ req, res, match, query }) {
        if (query.get('alt') !== 'media') throw invalidArgument('Downloads require alt=media.');
        return files.download(req, res, match[2] ?? '');
      },
    },
    {
      method: 'GET',
      pattern: ROUTES.file,
      handle: ({ res, match }) => sendJson(res, 200, files.resource(files.require(match[2] ?? ''))),
    },
    {
      method: 'DELETE',
      pattern: ROUTES.file,
      async handle({ res, match }) {
        await files.delete(match[2] ?? '');
        sendJson(res, 200, {});
      },
    },
    {
      method: 'GET',
      pattern: ROUTES.batches,
      handle: (c) => sendJson(c.res, 200, batches.list(c.pageSize, c.pageToken)),
    },
    {
      method: 'GET',
      pattern: ROUTES.batch,
      handle: ({ res, match }) => sendJson(res, 200, batches.get(match[2] ?? '')),
    },
    {
      method: 'DELETE',
      pattern: ROUTES.batch,
      handle({ res, match }) {
        batches.delete(match[2] ?? '');
        sendJson(res, 200, {});
      },
    },
    {
      method: 'POST',
      pattern: ROUTES.batchCancel,
      handle({ req, res, match }) {
        req.resume();
        batches.cancel(match[2] ?? '');
        sendJson(res, 200, {});
      },
    },
  ];

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', 'http://stand-in');
    const path = parsed.pathname;
    const method = req.method ?? 'GET';
    const query = parsed.searchParams;
    const pageSize = query.has('pageSize') ? Number(query.get('pageSize')) : undefined;
    const pageToken = query.get('pageToken') ?? undefined;

    if (path.startsWith('/__standin/')) return control(req, res, path, method);
    if (vertex.enabled && method === 'POST' && path === STS_PATH) return vertex.exchange(req, res);
    const onVertex = vertex.enabled && method === 'POST' ? parseVertexPath(path) : undefined;
    if (onVertex) return vertexCall(req, res, onVertex);
    const jobsPath = vertex.enabled ? BATCH_JOBS_PATH.exec(path) : null;
    if (jobsPath) return vertexBatchRoute(req, res, method, query, jobsPath);
    if (!req.headers['x-goog-api-key'] && !query.has('key')) throw missingApiKey();

    for (const r of routes) {
      if (r.method !== method) continue;
      const match = r.pattern.exec(path);
      if (!match) continue;
      const handled = await r.handle({ req, res, match, query, pageSize, pageToken });
      if (handled !== false) return;
    }
    req.resume();
    sendUnknownRoute(res, path);
  }

  async function control(req: IncomingMessage, res: ServerResponse, path: string, method: string) {
    if (path === '/__standin/stats' && method === 'GET') return sendJson(res, 200, handle.stats());
    if (path === '/__standin/config' && method === 'GET') return sendJson(res, 200, config);
    if (path === '/__standin/config' && method === 'POST') {
      const patchBody = parseJson(await readBody(req));
      try {
        return sendJson(res, 200, handle.configure(patchBody as GeminiStandInConfigPatch));
      } catch (error) {
        if (error instanceof StandInConfigError) throw invalidArgument(error.message);
        throw error;
      }
    }
    if (path === '/__standin/reset' && method === 'POST') {
      req.resume();
      handle.reset();
      return sendJson(res, 200, {});
    }
    req.resume();
    sendUnknownRoute(res, path);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (error instanceof StandInHttpError) {
        sendError(res, error);
        return;
      }
      process.stderr.write(
        `gemini stand-in: unexpected error on ${req.method} ${req.url}: ${String(error)}\n`,
      );
      sendError(res, internalError());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;

  const handle: GeminiStandIn = {
    url,
    port: actualPort,
    config: () => config,
    configure(next) {
      config = mergeConfig(config, next);
      if (next.seed !== undefined) prng = createPrng(config.seed);
      return config;
    },
    stats: () => ({
      ...stats.snapshot(),
      spend: spendWindow.summary(),
      files: files.summary(),
      batches: batches.summary(),
    }),
    webhookDeliveries: () => [...webhooks.deliveries],
    reset() {
      stats.reset();
      ledger.reset();
      priorityLedger.reset();
      spendWindow.reset();
      implicitCache.reset();
      vertex.reset();
      prng = createPrng(config.seed);
    },
    async close() {
      closing.abort();
      batches.close();
      vertexBatches.close();
      webhooks.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

function path0(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://stand-in').pathname;
}

/** Output tokens of an answer as billed: candidates plus thinking. */
function outputTokens(response: Record<string, unknown>): number {
  const usage = response.usageMetadata as
    | { candidatesTokenCount?: number; thoughtsTokenCount?: number }
    | undefined;
  return (usage?.candidatesTokenCount ?? 0) + (usage?.thoughtsTokenCount ?? 0);
}

function modelResource(model: string): Record<string, unknown> {
  return {
    name: `models/${model}`,
    baseModelId: model,
    version: '001',
    displayName: model,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportedGenerationMethods: ['generateContent', 'countTokens', 'batchGenerateContent'],
  };
}
