import { createHash, randomBytes } from 'node:crypto';
import { invalidArgument } from './errors.js';
import { textTokens } from './tokens.js';

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
  if (config.responseMimeType === 'application/json') return JSON.stringify({ echo: prefix, hash, media });
  const text = `echo: ${prefix}${media > 0 ? ` [media:${media}]` : ''} #${hash}`;
  const size = ANSWER_BYTES.exec(promptText(request));
  const bytes = size ? Math.min(Number(size[1]), MAX_ANSWER_BYTES) : 0;
  return bytes > Buffer.byteLength(text) ? text + '.'.repeat(bytes - Buffer.byteLength(text)) : text;
}

const ANSWER_BYTES = /\[\[answer-bytes:(\d{1,9})\]\]/;
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** Cuts `text` to at most `maxTokens` tokens by the token rule, on a character boundary. */
function truncateToTokens(text: string, maxTokens: number): string {
  const maxBytes = maxTokens * 4;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out;
}

/** The answer's text, finishReason and output tokens, honouring generationConfig.maxOutputTokens. */
export function answerFor(request: Json): {
  text: string;
  finishReason: 'STOP' | 'MAX_TOKENS';
  tokens: number;
} {
  const full = answerText(request);
  const config = isRecord(request.generationConfig) ? request.generationConfig : {};
  const max = typeof config.maxOutputTokens === 'number' ? config.maxOutputTokens : undefined;
  if (max !== undefined && textTokens(full) > max && !ANSWER_BYTES.test(promptText(request))) {
    const text = truncateToTokens(full, max);
    return { text, finishReason: 'MAX_TOKENS', tokens: textTokens(text) };
  }
  return { text: full, finishReason: 'STOP', tokens: textTokens(full) };
}

/** A response id shaped like the real ones (22 base64url characters). */
export function newResponseId(): string {
  return randomBytes(16).toString('base64url').slice(0, 22);
}

/** A complete GenerateContentResponse for `request`, with `inputTokens` from the token rule. */
export function buildResponse(
  model: string,
  request: Json,
  inputTokens: number,
  responseId = newResponseId(),
): Json {
  const answer = answerFor(request);
  return {
    candidates: [
      {
        content: { role: 'model', parts: [{ text: answer.text }] },
        finishReason: answer.finishReason,
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: inputTokens,
      candidatesTokenCount: answer.tokens,
      totalTokenCount: inputTokens + answer.tokens,
    },
    modelVersion: model,
    responseId,
  };
}

/**
 * The same answer cut into at most `chunks` streamed responses. Every chunk carries usageMetadata
 * with the prompt count (as the real stream does); the last one has finishReason and the totals.
 */
export function buildStreamChunks(model: string, request: Json, inputTokens: number, chunks: number): Json[] {
  const answer = answerFor(request);
  const chars = Array.from(answer.text);
  const n = Math.max(1, Math.min(chunks, chars.length));
  const size = Math.ceil(chars.length / n);
  const responseId = newResponseId();
  const out: Json[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    const text = chars.slice(i * size, last ? chars.length : (i + 1) * size).join('');
    out.push({
      candidates: [
        {
          content: { role: 'model', parts: [{ text }] },
          ...(last ? { finishReason: answer.finishReason } : {}),
          index: 0,
        },
      ],
      usageMetadata: last
        ? {
            promptTokenCount: inputTokens,
            candidatesTokenCount: answer.tokens,
            totalTokenCount: inputTokens + answer.tokens,
          }
        : { promptTokenCount: inputTokens, totalTokenCount: inputTokens },
      modelVersion: model,
      responseId,
    });
  }
  return out;
}
