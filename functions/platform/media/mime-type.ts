import { MediaError } from './error.js';

/** The types Gemini takes as media parts. */
const ALLOWED_TYPES =
  /^(image\/(png|jpeg|webp|heic|heif|gif)|application\/pdf|audio\/[\w.+-]+|video\/[\w.+-]+|text\/plain)$/;
/** Other spellings of the same type, so that a declared `image/jpg` matches a stored `image/jpeg`. */
const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'audio/mp3': 'audio/mpeg',
  'audio/x-wav': 'audio/wav',
  'audio/wave': 'audio/wav',
};

/** A type without its parameters, lower case, in its usual spelling. */
function essence(type: string | undefined): string {
  const bare = (type ?? '').split(';')[0]!.trim().toLowerCase();
  return ALIASES[bare] ?? bare;
}

/**
 * The type a medium is sent to Gemini as: its own, as the server serves it or Cloud Storage stores
 * it. A declared type never overrides it (else any object could be sent as text and echoed back):
 * a medium whose own type Gemini does not take is refused, and so is one declared as something
 * other than what it is.
 */
export function mediaType(own: string | undefined, declared: string | undefined, what: string): string {
  const type = essence(own);
  if (!ALLOWED_TYPES.test(type)) {
    throw new MediaError(
      `${what} has type "${type || 'unknown'}", which Gemini does not take as media (the medium's own type counts, not a declared one)`,
    );
  }
  if (declared !== undefined && essence(declared) !== type) {
    throw new MediaError(
      `${what} has type "${type}" but was declared "${declared}": the medium's own type counts, so a declared mimeType must match it or be left out`,
    );
  }
  return type;
}
