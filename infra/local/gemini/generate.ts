import { createHash, randomBytes } from 'node:crypto';
import type { GeminiStandInConfig } from './config.js';
import { invalidArgument } from './errors.js';
import { jsonAnswerFault } from './faults.js';
import { ESTIMATE_RULE, type TokenCount, type TokenRule, textTokens, truncateToTokens } from './tokens.js';

/**
 * Deterministic answers. The answer to a request depends only on its `contents` (and on
 * generationConfig's responseMimeType / maxOutputTokens), so tests can assert it:
 *
 *   text = `echo: ${first 200 characters of the prompt text}${media ? ` [media:${n}]` : ''} #${hash}`
 *
 * where the prompt text is every text part of every content joined with "\n", `n` counts the
 * inlineData / fileData parts and `hash` is the first 8 hex digits of sha256(JSON.stringify(contents)).
 * With `responseMimeType: 'application/json'` the text is `{"echo": prefix, "hash": hash, "media": n}`.
 * A prompt containing `[[answer-bytes:N]]` gets that text padded with `.` to N bytes (big answers, as
 * an image model's inline image can be over 1 MiB); maxOutputTokens does not cut it.
 *
 * Beyond the text, an answer has a shape ({@link answerShape}): prompt markers force one, shares of
 * `answers` draw one, thinking models think. Markers (README, "Answers"):
 *
 * | marker                 | answer                                                                    |
 * |------------------------|---------------------------------------------------------------------------|
 * | `[[block:REASON]]`     | no candidates, `promptFeedback.blockReason: REASON` (SAFETY, OTHER …)     |
 * | `[[finish:REASON]]`    | finishReason REASON: MAX_TOKENS cuts the text in half; SAFETY,            |
 * |                        | RECITATION and the others send a candidate without content                |
 * | `[[no-parts]]`         | a candidate `{content: {role: 'model'}, finishReason: 'STOP'}`, no parts  |
 * | `[[thoughts:N]]`       | `thoughtsTokenCount: N` (thinking eats into maxOutputTokens)              |
 * | `[[cached:N]]`         | `cachedContentTokenCount: N` (at most the prompt's tokens)                |
 */

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Checks a GenerateContentRequest the way the real service does and returns it; throws 400
 * INVALID_ARGUMENT with the real wording otherwise. `field` names the request in messages.
 */
export function validateGenerateRequest(body: unknown, field = 'GenerateContentRequest'): Json {
  if (!isRecord(body)) throw invalidArgument('Invalid JSON payload received. Expected an object.');
  const contents = body.contents;
  if (contents === undefined || (Array.isArray(contents) && contents.length === 0)) {
    throw invalidArgument(`* ${field}.contents: contents is not specified\n`);
  }
  if (!Array.isArray(contents)) {
    throw invalidArgument(
      `Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)`,
    );
  }
  contents.forEach((content: unknown, i) => {
    if (!isRecord(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      throw invalidArgument(`* ${field}.contents[${i}].parts: contents.parts must not be empty.\n`);
    }
    if (content.role !== undefined && content.role !== 'user' && content.role !== 'model') {
      throw invalidArgument('Please use a valid role: user, model.');
    }
    content.parts.forEach((part: unknown, j) => {
      const hasData =
        isRecord(part) &&
        [
          'text',
          'inlineData',
          'fileData',
          'functionCall',
          'functionResponse',
          'executableCode',
          'codeExecutionResult',
        ].some((k) => part[k] !== undefined);
      if (!hasData) {
        throw invalidArgument(
          `* ${field}.contents[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field\n`,
        );
      }
      const inline = isRecord(part) ? part.inlineData : undefined;
      if (inline !== undefined) {
        if (!isRecord(inline) || typeof inline.data !== 'string' || !BASE64.test(inline.data)) {
          throw invalidArgument(
            `Invalid value at 'contents[${i}].parts[${j}].inline_data.data' (TYPE_BYTES), Base64 decoding failed`,
          );
        }
        if (typeof inline.mimeType !== 'string' || inline.mimeType === '') {
          throw invalidArgument(
            `* ${field}.contents[${i}].parts[${j}].inline_data.mime_type: mime_type is not specified\n`,
          );
        }
      }
    });
  });
  return body;
}

/** The prompt text: every text part of every content, joined with "\n". */
export function promptText(request: Json): string {
  const texts: string[] = [];
  for (const content of Array.isArray(request.contents) ? request.contents : []) {
    if (!isRecord(content) || !Array.isArray(content.parts)) continue;
    for (const part of content.parts)
      if (isRecord(part) && typeof part.text === 'string') texts.push(part.text);
  }
  return texts.join('\n');
}

/** Every fileData.fileUri the request's contents mention. */
export function fileUris(request: Json): string[] {
  const uris: string[] = [];
  for (const content of Array.isArray(request.contents) ? request.contents : []) {
    if (!isRecord(content) || !Array.isArray(content.parts)) continue;
    for (const part of content.parts) {
      if (isRecord(part) && isRecord(part.fileData) && typeof part.fileData.fileUri === 'string') {
        uris.push(part.fileData.fileUri);
      }
    }
  }
  return uris;
}

function mediaParts(request: Json): number {
  let n = 0;
  for (const content of Array.isArray(request.contents) ? request.contents : []) {
    if (!isRecord(content) || !Array.isArray(content.parts)) continue;
    for (const part of content.parts) if (isRecord(part) && (part.inlineData || part.fileData)) n++;
  }
  return n;
}

/** The deterministic answer text for a request (see the module comment). */
export function answerText(request: Json): string {
  const prefix = Array.from(promptText(request)).slice(0, 200).join('');
  const hash = createHash('sha256')
    .update(JSON.stringify(request.contents ?? []))
    .digest('hex')
    .slice(0, 8);
  const media = mediaParts(request);
  const config = isRecord(request.generationConfig) ? request.generationConfig : {};
  if (config.responseMimeType === 'application/json')
    return jsonAnswerFault(
      JSON.stringify({ echo: prefix, hash, media }),
      promptText(request),
      hasModelTurn(request),
    );
  const text = `echo: ${prefix}${media > 0 ? ` [media:${media}]` : ''} #${hash}`;
  const size = ANSWER_BYTES.exec(promptText(request));
  const bytes = size ? Math.min(Number(size[1]), MAX_ANSWER_BYTES) : 0;
  return bytes > Buffer.byteLength(text) ? text + '.'.repeat(bytes - Buffer.byteLength(text)) : text;
}

/** Whether the conversation holds an answer already (a follow-up turn, such as a repair). */
function hasModelTurn(request: Json): boolean {
  return Array.isArray(request.contents) && request.contents.some((c) => isRecord(c) && c.role === 'model');
}

const ANSWER_BYTES = /\[\[answer-bytes:(\d{1,9})\]\]/;
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** The `answers` settings. */
export type AnswersConfig = GeminiStandInConfig['answers'];

/** How an answer departs from a plain STOP with text: what markers and shares asked for. */
export interface AnswerShape {
  /** The prompt is blocked: `promptFeedback.blockReason`, no candidates. */
  blockReason?: string;
  /** A finishReason forced by marker or share (MAX_TOKENS, SAFETY, RECITATION …). */
  finishReason?: string;
  /** A candidate without `content.parts`. */
  noParts: boolean;
  /** Thinking tokens before the maxOutputTokens cap. */
  thoughts: number;
  /** Prompt tokens read from the cache. */
  cached: number;
}

const BLOCK = /\[\[block:([A-Z_]+)\]\]/;
const FINISH = /\[\[finish:([A-Z_]+)\]\]/;
const NO_PARTS = /\[\[no-parts\]\]/;
const THOUGHTS = /\[\[thoughts:(\d{1,9})\]\]/;
const CACHED = /\[\[cached:(\d{1,9})\]\]/;

/** Prompt tokens from which upstream's implicit cache may serve part of a prompt (2.5 Flash). */
const IMPLICIT_CACHE_MIN_TOKENS = 1024;

/** Whether `model` thinks by default (`answers.thinkingModels`; `x*` is a prefix, `*` every model). */
export function thinksByDefault(model: string, answers: AnswersConfig): boolean {
  return answers.thinkingModels.some((m) =>
    m.endsWith('*') ? model.startsWith(m.slice(0, -1)) : m === model,
  );
}

function generationConfig(request: Json): Json {
  return isRecord(request.generationConfig) ? request.generationConfig : {};
}

/**
 * The shape of the answer to `request`: markers first, then one draw over the shares of odd answers
 * and one for the implicit cache (`draw` is called only for shares that are not 0, so configurations
 * without them keep every other random pattern), and the thinking a thinking model does: the
 * request's `thinkingConfig.thinkingBudget` caps `answers.thoughtsTokens`, 0 turns it off (not on
 * a Pro model, which always thinks).
 */
export function answerShape(
  model: string,
  request: Json,
  promptTokens: number,
  answers: AnswersConfig,
  draw: () => number,
): AnswerShape {
  const prompt = promptText(request);
  const shape: AnswerShape = { noParts: NO_PARTS.test(prompt), thoughts: 0, cached: 0 };
  const block = BLOCK.exec(prompt)?.[1];
  const finish = FINISH.exec(prompt)?.[1];
  if (block) shape.blockReason = block;
  if (finish && finish !== 'STOP') shape.finishReason = finish;
  const odd =
    answers.blockedShare +
    answers.noPartsShare +
    answers.maxTokensShare +
    answers.safetyShare +
    answers.recitationShare;
  if (!block && !finish && !shape.noParts && odd > 0) {
    const odds: Array<[number, (s: AnswerShape) => void]> = [
      [answers.blockedShare, (s) => (s.blockReason = 'OTHER')],
      [answers.noPartsShare, (s) => (s.noParts = true)],
      [answers.maxTokensShare, (s) => (s.finishReason = 'MAX_TOKENS')],
      [answers.safetyShare, (s) => (s.finishReason = 'SAFETY')],
      [answers.recitationShare, (s) => (s.finishReason = 'RECITATION')],
    ];
    let r = draw();
    for (const [share, apply] of odds) {
      if (r < share) {
        apply(shape);
        break;
      }
      r -= share;
    }
  }
  const cached = CACHED.exec(prompt)?.[1];
  if (cached !== undefined) shape.cached = Math.min(Number(cached), promptTokens);
  else if (
    answers.cachedShare > 0 &&
    promptTokens >= IMPLICIT_CACHE_MIN_TOKENS &&
    draw() < answers.cachedShare
  ) {
    shape.cached = Math.floor(promptTokens / 2);
  }
  const thoughts = THOUGHTS.exec(prompt)?.[1];
  if (thoughts !== undefined) shape.thoughts = Number(thoughts);
  else if (thinksByDefault(model, answers)) {
    const thinking = isRecord(generationConfig(request).thinkingConfig)
      ? (generationConfig(request).thinkingConfig as Json)
      : {};
    const budget = typeof thinking.thinkingBudget === 'number' ? thinking.thinkingBudget : undefined;
    if (budget === 0 && !model.includes('pro')) shape.thoughts = 0;
    else
      shape.thoughts =
        budget !== undefined && budget > 0
          ? Math.min(answers.thoughtsTokens, budget)
          : answers.thoughtsTokens;
  }
  return shape;
}

/** A plain shape: text, STOP, no thinking. */
export const PLAIN_SHAPE: AnswerShape = { noParts: false, thoughts: 0, cached: 0 };

/** The candidate's content, finishReason, output and thinking tokens for `request` and its shape. */
export function answerFor(
  request: Json,
  shape: AnswerShape = PLAIN_SHAPE,
  rule: TokenRule = ESTIMATE_RULE,
): { parts?: Json[]; finishReason: string; tokens: number; thoughts: number } {
  let thoughts = shape.thoughts;
  const asked = generationConfig(request).maxOutputTokens;
  const max = typeof asked === 'number' && !ANSWER_BYTES.test(promptText(request)) ? asked : undefined;
  if (max !== undefined) thoughts = Math.min(thoughts, max);
  if (shape.finishReason !== undefined && shape.finishReason !== 'MAX_TOKENS') {
    return { finishReason: shape.finishReason, tokens: 0, thoughts };
  }
  if (shape.noParts) return { parts: [], finishReason: 'STOP', tokens: 0, thoughts };
  const full = answerText(request);
  let text = full;
  let finishReason = 'STOP';
  if (max !== undefined && textTokens(full, rule) > max - thoughts) {
    // Thinking is paid out of maxOutputTokens first; what is left may be nothing at all.
    text = truncateToTokens(full, Math.max(0, max - thoughts), rule);
    finishReason = 'MAX_TOKENS';
  } else if (shape.finishReason === 'MAX_TOKENS') {
    text = truncateToTokens(full, Math.floor(textTokens(full, rule) / 2), rule);
    finishReason = 'MAX_TOKENS';
  }
  if (text === '') return { parts: [], finishReason, tokens: 0, thoughts };
  const parts: Json[] = [{ text }];
  const thinking = generationConfig(request).thinkingConfig;
  if (thoughts > 0 && isRecord(thinking) && thinking.includeThoughts === true) {
    parts.unshift({
      text: `Thinking about: ${Array.from(promptText(request)).slice(0, 40).join('')}`,
      thought: true,
    });
  }
  return { parts, finishReason, tokens: textTokens(text, rule), thoughts };
}

/** A response id shaped like the real ones (22 base64url characters). */
export function newResponseId(): string {
  return randomBytes(16).toString('base64url').slice(0, 22);
}

/** How to build answers: the shape drawn for this request, the token rule, per-modality details. */
export interface AnswerOptions {
  shape?: AnswerShape;
  rule?: TokenRule;
  /** `promptTokensDetails` and friends in usageMetadata. */
  tokenDetails?: boolean;
}

const SAFETY_RATINGS = [
  { category: 'HARM_CATEGORY_SEXUALLY_EXPLICIT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HATE_SPEECH', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' },
  { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true },
];

function usageMetadata(
  input: TokenCount,
  output: number,
  thoughts: number,
  cached: number,
  details: boolean,
): Json {
  return {
    promptTokenCount: input.total,
    ...(output > 0 ? { candidatesTokenCount: output } : {}),
    totalTokenCount: input.total + output + thoughts,
    ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
    ...(details && input.details.length > 0 ? { promptTokensDetails: input.details } : {}),
    ...(details && cached > 0 ? { cacheTokensDetails: [{ modality: 'TEXT', tokenCount: cached }] } : {}),
    ...(details && output > 0 ? { candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: output }] } : {}),
    ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
  };
}

/**
 * A complete GenerateContentResponse for `request`, with `input` from the token rule. Zero counts
 * are left out, as upstream's proto3 JSON does (no candidatesTokenCount without output).
 */
export function buildResponse(
  model: string,
  request: Json,
  input: TokenCount,
  options: AnswerOptions = {},
  responseId = newResponseId(),
): Json {
  const shape = options.shape ?? PLAIN_SHAPE;
  const details = options.tokenDetails ?? false;
  const cached = Math.min(shape.cached, input.total);
  if (shape.blockReason !== undefined) {
    return {
      promptFeedback: {
        blockReason: shape.blockReason,
        ...(shape.blockReason === 'SAFETY' ? { safetyRatings: SAFETY_RATINGS } : {}),
      },
      usageMetadata: usageMetadata(input, 0, 0, cached, details),
      modelVersion: model,
      responseId,
    };
  }
  const answer = answerFor(request, shape, options.rule);
  const candidate: Json = {
    ...(answer.parts !== undefined
      ? { content: { role: 'model', ...(answer.parts.length > 0 ? { parts: answer.parts } : {}) } }
      : {}),
    finishReason: answer.finishReason,
    ...(answer.finishReason === 'SAFETY' ? { safetyRatings: SAFETY_RATINGS } : {}),
    index: 0,
  };
  return {
    candidates: [candidate],
    usageMetadata: usageMetadata(input, answer.tokens, answer.thoughts, cached, details),
    modelVersion: model,
    responseId,
  };
}

/**
 * The same answer cut into at most `chunks` streamed responses. Every chunk carries usageMetadata
 * with the prompt count (as the real stream does); the last one has finishReason and the totals. An
 * answer without text (blocked, no parts, SAFETY …) is one chunk.
 */
export function buildStreamChunks(
  model: string,
  request: Json,
  input: TokenCount,
  chunks: number,
  options: AnswerOptions = {},
): Json[] {
  const whole = buildResponse(model, request, input, options);
  const candidate = (whole.candidates as Json[] | undefined)?.[0];
  const content = isRecord(candidate?.content) ? candidate.content : undefined;
  const parts = Array.isArray(content?.parts) ? (content.parts as Json[]) : [];
  const answerPart = parts.find((p) => p.thought !== true);
  if (!candidate || typeof answerPart?.text !== 'string') return [whole];
  const thoughtParts = parts.filter((p) => p.thought === true);
  const chars = Array.from(answerPart.text);
  const n = Math.max(1, Math.min(chunks, chars.length));
  const size = Math.ceil(chars.length / n);
  const out: Json[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    const text = chars.slice(i * size, last ? chars.length : (i + 1) * size).join('');
    out.push({
      candidates: [
        {
          content: { role: 'model', parts: [...(i === 0 ? thoughtParts : []), { text }] },
          ...(last ? { finishReason: candidate.finishReason } : {}),
          index: 0,
        },
      ],
      usageMetadata: last
        ? whole.usageMetadata
        : { promptTokenCount: input.total, totalTokenCount: input.total },
      modelVersion: model,
      responseId: whole.responseId,
    });
  }
  return out;
}
