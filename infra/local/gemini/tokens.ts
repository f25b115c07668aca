import { type GeminiStandInConfig, tokenRuleSchema } from './config.js';
import { type MediaProbe, PROBE_HEAD_BYTES, probeBytes } from './probe.js';

/**
 * The stand-in's token rule: the one count behind `usageMetadata.promptTokenCount`, `countTokens`,
 * the TPM window and the Batch API's enqueued-token cap. Two rules (`tokens.rule`):
 *
 * `estimate` (profile ideal), the product's own estimator, so the numbers are predictable:
 * - a text part costs ceil(UTF-8 byte length / 4) tokens;
 * - an image part (`inlineData` or `fileData` with an `image/*` mimeType) costs 258 tokens;
 * - an `inlineData` part of a text type (`text/*`, JSON) costs ceil(decoded bytes / 4);
 *   a `fileData` part of a text type costs ceil(file size / 4) when the file is known;
 * - any other media part (audio, video, PDF …) costs 258 tokens, like an image;
 * - any other part (function calls, …) costs ceil(UTF-8 bytes of its JSON / 4).
 *
 * `modality` (profile strict), counted the way upstream's counts drift from that estimate:
 * - text: per character, by script: Latin `1 / latinCharsPerToken` (strict 3.2 characters a token,
 *   25% more than bytes / 4 for ASCII), CJK `cjkTokensPerChar` (strict 1), any other script
 *   `1 / otherCharsPerToken`; a part is the sum rounded up; text-typed media count as text;
 * - an image: 258 when both sides are <= 384 px, else 258 per 768×768 tile (ceil(w/768)·ceil(h/768));
 *   the size comes from the PNG / GIF / JPEG / WebP header, else from the byte size (a square of
 *   bytes / imageBytesPerPixel pixels);
 * - a PDF: 258 per page (pages counted in the file, else one per pdfBytesPerPage bytes);
 * - audio: 32 per second, video: 263 per second (seconds from a WAV header, else from the byte size);
 * - any other part: its JSON as text.
 *
 * A request's input tokens are the sum over its `contents` and its `systemInstruction`, kept per
 * modality (TEXT, IMAGE, AUDIO, VIDEO, DOCUMENT) for `promptTokensDetails`. `tokens.skew` multiplies
 * each modality's sum (rounded up), and `tokens.skewNoise` scatters that factor per request (±share,
 * drawn from a hash of its contents); the total is the sum of the modalities. Output tokens use the
 * text rule, unskewed.
 */

/** The token rule's settings (`tokens` in the configuration). */
export type TokenRule = GeminiStandInConfig['tokens'];

/** Tokens charged for one media part under the `estimate` rule. */
export const IMAGE_PART_TOKENS = 258;

/** A modality as `promptTokensDetails` names it. */
export type Modality = 'TEXT' | 'IMAGE' | 'AUDIO' | 'VIDEO' | 'DOCUMENT';

/** What the rule knows of an uploaded file a `fileData` part points at. */
export interface FileInfo {
  sizeBytes: number;
  mimeType: string;
  probe?: MediaProbe;
}

/** Looks up an uploaded file by its `fileUri`, when the caller knows the store. */
export type FileLookup = (fileUri: string) => FileInfo | undefined;

/** A request's input tokens: the total and its share per modality (modalities with tokens only). */
export interface TokenCount {
  total: number;
  details: Array<{ modality: Modality; tokenCount: number }>;
}

/** The rule with every default: `estimate`, no skew. */
export const ESTIMATE_RULE: TokenRule = tokenRuleSchema.parse({});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTextMime(mimeType: unknown): boolean {
  return typeof mimeType === 'string' && (mimeType.startsWith('text/') || mimeType === 'application/json');
}

const CJK =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3000-\u303f\uff00-\uffef]/u;

/** The token cost of one character under the `modality` rule (fractional). */
function charCost(ch: string, rule: TokenRule): number {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x250 || (cp >= 0x2000 && cp < 0x2070)) return 1 / rule.latinCharsPerToken;
  if (CJK.test(ch)) return rule.cjkTokensPerChar;
  return 1 / rule.otherCharsPerToken;
}

/** Tokens of a piece of text by the rule (ceil(UTF-8 bytes / 4) under `estimate`). */
export function textTokens(text: string, rule: TokenRule = ESTIMATE_RULE): number {
  if (rule.rule === 'estimate') return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
  let cost = 0;
  for (const ch of text) cost += charCost(ch, rule);
  // Float sums of exact fractions (1/3.2 …) may land a hair above a whole number.
  return Math.ceil(cost - 1e-9);
}

/** The longest prefix of `text` (whole characters) of at most `maxTokens` tokens by the rule. */
export function truncateToTokens(text: string, maxTokens: number, rule: TokenRule = ESTIMATE_RULE): string {
  let out = '';
  let cost = 0;
  for (const ch of text) {
    const next = rule.rule === 'estimate' ? Buffer.byteLength(ch, 'utf8') / 4 : charCost(ch, rule);
    if (Math.ceil(cost + next - 1e-9) > maxTokens) break;
    out += ch;
    cost += next;
  }
  return out;
}

/** Bytes a base64 string decodes to. */
function base64Bytes(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((data.length * 3) / 4) - padding);
}

/** The modality a media type counts under. */
function modalityOf(mimeType: string): Modality {
  if (mimeType.startsWith('image/')) return 'IMAGE';
  if (mimeType.startsWith('audio/')) return 'AUDIO';
  if (mimeType.startsWith('video/')) return 'VIDEO';
  if (isTextMime(mimeType)) return 'TEXT';
  return 'DOCUMENT';
}

/** Tokens of a medium under the `modality` rule, from its probe and byte size. */
function mediaTokens(mimeType: string, size: number, probe: MediaProbe, rule: TokenRule): number {
  const modality = modalityOf(mimeType);
  if (modality === 'IMAGE') {
    const side = Math.sqrt(size / rule.imageBytesPerPixel);
    const width = probe.width ?? side;
    const height = probe.height ?? side;
    if (width <= rule.smallImageMaxSide && height <= rule.smallImageMaxSide) return rule.imageTileTokens;
    return (
      Math.max(1, Math.ceil(width / rule.imageTileSide)) *
      Math.max(1, Math.ceil(height / rule.imageTileSide)) *
      rule.imageTileTokens
    );
  }
  if (mimeType === 'application/pdf') {
    const pages = probe.pages ?? Math.max(1, Math.ceil(size / rule.pdfBytesPerPage));
    return pages * rule.pdfPageTokens;
  }
  if (modality === 'AUDIO') {
    return Math.ceil((probe.seconds ?? size / rule.audioBytesPerSecond) * rule.audioTokensPerSecond);
  }
  if (modality === 'VIDEO') {
    return Math.ceil((probe.seconds ?? size / rule.videoBytesPerSecond) * rule.videoTokensPerSecond);
  }
  // Any other document type: one page per pdfBytesPerPage bytes.
  return Math.max(1, Math.ceil(size / rule.pdfBytesPerPage)) * rule.pdfPageTokens;
}

/** Tokens of one `Part` by the rule, and the modality they count under. */
function partTokens(
  part: unknown,
  rule: TokenRule,
  files?: FileLookup,
): { modality: Modality; tokens: number } {
  if (!isRecord(part)) return { modality: 'TEXT', tokens: 0 };
  if (typeof part.text === 'string') return { modality: 'TEXT', tokens: textTokens(part.text, rule) };
  const inline = part.inlineData;
  if (isRecord(inline)) {
    const mimeType = typeof inline.mimeType === 'string' ? inline.mimeType : '';
    const data = typeof inline.data === 'string' ? inline.data : '';
    if (isTextMime(mimeType)) {
      const bytes = Buffer.from(data, 'base64');
      const tokens =
        rule.rule === 'estimate' ? Math.ceil(bytes.length / 4) : textTokens(bytes.toString('utf8'), rule);
      return { modality: 'TEXT', tokens };
    }
    const modality = modalityOf(mimeType);
    if (rule.rule === 'estimate') return { modality, tokens: IMAGE_PART_TOKENS };
    const size = base64Bytes(data);
    // A header needs the head only; a PDF's pages need all of it.
    const decoded =
      mimeType === 'application/pdf'
        ? Buffer.from(data, 'base64')
        : Buffer.from(data.slice(0, Math.ceil(PROBE_HEAD_BYTES / 3) * 4), 'base64');
    return { modality, tokens: mediaTokens(mimeType, size, probeBytes(mimeType, decoded, size), rule) };
  }
  const file = part.fileData;
  if (isRecord(file)) {
    const info = typeof file.fileUri === 'string' ? files?.(file.fileUri) : undefined;
    const mimeType = typeof file.mimeType === 'string' ? file.mimeType : (info?.mimeType ?? '');
    const modality = modalityOf(mimeType);
    if (rule.rule === 'estimate') {
      if (isTextMime(mimeType) && info !== undefined)
        return { modality, tokens: Math.ceil(info.sizeBytes / 4) };
      return { modality, tokens: IMAGE_PART_TOKENS };
    }
    if (info === undefined) return { modality, tokens: rule.imageTileTokens };
    if (isTextMime(mimeType))
      return { modality, tokens: Math.ceil(info.sizeBytes / rule.latinCharsPerToken) };
    return { modality, tokens: mediaTokens(mimeType, info.sizeBytes, info.probe ?? {}, rule) };
  }
  return { modality: 'TEXT', tokens: textTokens(JSON.stringify(part), rule) };
}

function addContent(
  sums: Map<Modality, number>,
  content: unknown,
  rule: TokenRule,
  files?: FileLookup,
): void {
  if (typeof content === 'string') {
    sums.set('TEXT', (sums.get('TEXT') ?? 0) + textTokens(content, rule));
    return;
  }
  if (!isRecord(content) || !Array.isArray(content.parts)) return;
  for (const part of content.parts) {
    const { modality, tokens } = partTokens(part, rule, files);
    sums.set(modality, (sums.get(modality) ?? 0) + tokens);
  }
}

/**
 * A request's draw in [-1, 1] for `tokens.skewNoise`: FNV-1a over the JSON of its `contents`, so the
 * same contents always draw the same (countTokens and generateContent agree) and different ones scatter.
 */
function noiseOf(contents: unknown): number {
  const text = JSON.stringify(contents ?? null);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return (h / 0xffffffff) * 2 - 1;
}

/** Input tokens of a GenerateContentRequest (contents plus systemInstruction), skewed, per modality. */
export function countRequestTokens(
  request: Record<string, unknown>,
  rule: TokenRule = ESTIMATE_RULE,
  files?: FileLookup,
): TokenCount {
  const sums = new Map<Modality, number>();
  for (const content of Array.isArray(request.contents) ? request.contents : [])
    addContent(sums, content, rule, files);
  const system = request.systemInstruction ?? request.system_instruction;
  if (system !== undefined) addContent(sums, system, rule, files);
  const details: TokenCount['details'] = [];
  let total = 0;
  const factor = rule.skew * (1 + rule.skewNoise * noiseOf(request.contents));
  for (const modality of ['TEXT', 'IMAGE', 'AUDIO', 'VIDEO', 'DOCUMENT'] as const) {
    const raw = sums.get(modality) ?? 0;
    if (raw === 0) continue;
    const tokenCount = factor === 1 ? raw : Math.max(1, Math.ceil(raw * factor - 1e-9));
    details.push({ modality, tokenCount });
    total += tokenCount;
  }
  return { total, details };
}

/** Input tokens of a GenerateContentRequest: the total of {@link countRequestTokens}. */
export function requestTokens(
  request: Record<string, unknown>,
  rule: TokenRule = ESTIMATE_RULE,
  files?: FileLookup,
): number {
  return countRequestTokens(request, rule, files).total;
}
