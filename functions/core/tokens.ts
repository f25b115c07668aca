import type { GenerateContentRequest, MediaRef } from './jobs.js';

/** Tokens charged per image part (Gemini counts small images as 258 tokens). */
export const TOKENS_PER_MEDIA_PART = 258;

/**
 * Estimated input tokens of a request: one token per 4 UTF-8 bytes of text (Gemini's published rule
 * of thumb), 258 per media part. Used to budget TPM before calling; the response's usageMetadata is
 * what gets billed and reported.
 */
export function estimateInputTokens(request: GenerateContentRequest, media: MediaRef[] = []): number {
  let tokens = 0;
  const countParts = (parts: GenerateContentRequest['contents'][number]['parts']) => {
    for (const part of parts) {
      if (typeof part.text === 'string') tokens += Math.ceil(Buffer.byteLength(part.text, 'utf8') / 4);
      else if (part.inlineData || part.fileData) tokens += TOKENS_PER_MEDIA_PART;
    }
  };
  for (const content of request.contents) countParts(content.parts);
  if (request.systemInstruction) countParts(request.systemInstruction.parts);
  return tokens + media.length * TOKENS_PER_MEDIA_PART;
}
