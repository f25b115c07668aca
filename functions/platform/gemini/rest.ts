import { GeminiCallError, toCallError } from './client.js';

/** Where and how the Batch API client's REST calls go. */
export interface RestTransport {
  /** e.g. `https://generativelanguage.googleapis.com`, no trailing slash. */
  baseUrl: string;
  apiKey: string;
  /** Bound on one request; a streamed download applies it to each wait for the next piece instead. */
  timeoutMs: number;
  fetch: typeof fetch;
}

/** One REST request; `timeout: false` leaves all timing to `signal` (streamed bodies). */
export interface RestInit {
  method?: string;
  headers?: Record<string, string>;
  /** A stream body is sent as is (half duplex): fetch does not copy it first. */
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  signal?: AbortSignal;
  timeout?: boolean;
}

/**
 * Sends one request with the API key and, by default, a timeout. A non-2xx answer throws
 * `GeminiCallError` with its status and JSON error body; a network fault or a timeout throws one
 * without status; the caller's own abort rethrows the signal's reason.
 */
export async function restCall(t: RestTransport, url: string, init: RestInit = {}): Promise<Response> {
  const { signal, timeout = true, headers, ...rest } = init;
  const signals = [signal, timeout ? AbortSignal.timeout(t.timeoutMs) : undefined].filter(
    (s): s is AbortSignal => s !== undefined,
  );
  let res: Response;
  try {
    res = await t.fetch(url, {
      ...rest,
      ...(rest.body instanceof ReadableStream ? ({ duplex: 'half' } as RequestInit) : {}),
      headers: { 'x-goog-api-key': t.apiKey, ...headers },
      ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw toCallError(error);
  }
  if (!res.ok) throw await answerError(res);
  return res;
}

/** The error for a non-2xx answer: its JSON body, or the text wrapped like one. */
async function answerError(res: Response): Promise<GeminiCallError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: { code: res.status, message: text.slice(0, 2000) } };
  }
  return new GeminiCallError(`Gemini answered ${res.status}`, res.status, body);
}

/**
 * The length of the body as it will be read, or NaN when that is not known. `content-length` counts
 * the bytes on the wire: for a body with a `content-encoding` (Google's front end gzips downloads
 * for a client that accepts it, and fetch unpacks them), it is the packed length, which the unpacked
 * bytes read here cannot be compared with — a cut-off gzipped body would look complete.
 */
function rawLength(res: Response): number {
  const encoding = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') return Number.NaN;
  return Number(res.headers.get('content-length') ?? Number.NaN);
}

/**
 * GETs `url` and splits its streamed body into lines as they arrive: memory holds one piece of the
 * body and one partial line. `\r\n` endings and a last line without an end are handled; blank
 * lines are skipped. The timeout bounds each wait for the server, never the time the consumer
 * spends on a line.
 */
export async function* restLines(
  t: RestTransport,
  url: string,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => idle.abort(new GeminiCallError('Gemini did not answer in time', undefined, undefined)),
      t.timeoutMs,
    );
  };
  arm();
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let finished = false;
  try {
    const res = await restCall(t, url, {
      timeout: false,
      signal: signal ? AbortSignal.any([signal, idle.signal]) : idle.signal,
    });
    reader = res.body?.getReader();
    const decoder = new TextDecoder();
    const expected = rawLength(res);
    let received = 0;
    let pending = '';
    for (;;) {
      arm();
      let chunk: { done: boolean; value?: Uint8Array | undefined };
      try {
        chunk = reader ? await reader.read() : { done: true, value: undefined };
      } catch (err) {
        // The server may close a kept-alive connection while lines already received wait to be
        // read here: with every announced byte in hand, that is the end of the body, not a fault.
        // Only an unencoded body is counted so (see `rawLength`); a gzipped one ends where its own
        // trailer says, and a cut is the decoder's error, thrown here.
        if (!(Number.isFinite(expected) && received >= expected)) throw err;
        chunk = { done: true, value: undefined };
      }
      clearTimeout(timer);
      const { done, value } = chunk;
      if (done || !value) break;
      received += value.byteLength;
      const text = decoder.decode(value, { stream: true });
      let from = 0;
      for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', from)) {
        const line = (pending + text.slice(from, end)).replace(/\r$/, '');
        pending = '';
        from = end + 1;
        if (line.trim() !== '') yield line;
      }
      pending += text.slice(from);
    }
    finished = true;
    const last = (pending + decoder.decode()).replace(/\r$/, '');
    if (last.trim() !== '') yield last;
  } catch (error) {
    if (idle.signal.aborted) throw idle.signal.reason;
    if (signal?.aborted) throw signal.reason;
    throw error instanceof GeminiCallError ? error : toCallError(error);
  } finally {
    clearTimeout(timer);
    if (!finished) await reader?.cancel().catch(() => undefined);
  }
}
