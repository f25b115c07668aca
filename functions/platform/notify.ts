/** POSTs a job's summary to its callback URL, with a short timeout and two retries on 5xx/network errors. */
export async function postCallback(
  url: string,
  payload: unknown,
  fetchFn: typeof fetch = fetch,
): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const res = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'gemini-fanout' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (res.ok) return;
      lastError = new Error(`callback answered ${res.status}`);
      if (res.status < 500 && res.status !== 429) break;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
  throw lastError;
}
