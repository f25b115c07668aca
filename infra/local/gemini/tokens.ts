/**
 * The stand-in's token rule. The rest of the project estimates with the same rule, so the numbers
 * the stand-in reports (usageMetadata, countTokens, the TPM window) are predictable:
 *
 * - a text part costs ceil(UTF-8 byte length / 4) tokens;
 * - an image part (`inlineData` or `fileData` with an `image/*` mimeType) costs 258 tokens;
 * - an `inlineData` part of a text type (`text/*`, JSON) costs ceil(decoded bytes / 4);
 *   a `fileData` part of a text type costs ceil(file size / 4) when the file is known;
 * - any other media part (audio, video, PDF …) costs 258 tokens, like an image;
 * - any other part (function calls, …) costs ceil(UTF-8 bytes of its JSON / 4).
 *
 * A request's input tokens are the sum over its `contents` and its `systemInstruction`.
 */

/** Tokens charged for one image (or other non-text media) part. */
export const IMAGE_PART_TOKENS = 258;

/** Tokens of a piece of text: ceil(UTF-8 byte length / 4). */
export function textTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTextMime(mimeType: unknown): boolean {
  return typeof mimeType === 'string' && (mimeType.startsWith('text/') || mimeType === 'application/json');
}

/** Looks up the size of an uploaded file from its `fileUri`, when the caller knows the store. */
export type FileSizeLookup = (fileUri: string) => number | undefined;

/** Tokens of one `Part` by the rule above. */
export function partTokens(part: unknown, fileSize?: FileSizeLookup): number {
  if (!isRecord(part)) return 0;
  if (typeof part.text === 'string') return textTokens(part.text);
  const inline = part.inlineData;
  if (isRecord(inline)) {
    if (isTextMime(inline.mimeType) && typeof inline.data === 'string') {
      return Math.ceil(Buffer.from(inline.data, 'base64').length / 4);
    }
    return IMAGE_PART_TOKENS;
  }
  const file = part.fileData;
  if (isRecord(file)) {
    const size = typeof file.fileUri === 'string' ? fileSize?.(file.fileUri) : undefined;
    if (isTextMime(file.mimeType) && size !== undefined) return Math.ceil(size / 4);
    return IMAGE_PART_TOKENS;
  }
  return textTokens(JSON.stringify(part));
}

/** Tokens of one `Content` (`{role, parts}`); a bare string counts as text. */
export function contentTokens(content: unknown, fileSize?: FileSizeLookup): number {
  if (typeof content === 'string') return textTokens(content);
  if (!isRecord(content) || !Array.isArray(content.parts)) return 0;
  return content.parts.reduce((sum: number, part: unknown) => sum + partTokens(part, fileSize), 0);
}

/** Input tokens of a GenerateContentRequest: its contents plus its systemInstruction. */
export function requestTokens(request: Record<string, unknown>, fileSize?: FileSizeLookup): number {
  const contents = Array.isArray(request.contents) ? request.contents : [];
  const system = request.systemInstruction ?? request.system_instruction;
  return (
    contents.reduce((sum: number, c: unknown) => sum + contentTokens(c, fileSize), 0) +
    (system === undefined ? 0 : contentTokens(system, fileSize))
  );
}
