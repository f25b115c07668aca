// @ts-check
/**
 * The live job page's latest results (inlined into the page by page.ts):
 * listens to `GET /jobs/{id}/events` (EventSource: `result` per finished item, `done` with the final
 * job) and lists the latest results with a snippet of each answer. Plain functions, hoisted inside
 * the page's one script; they read the job script's state (view, latest, source…) at run time.

 * Same rule as the common script: text only, never HTML from a string.
 */
function answerText(line) {
  if (line.error) return String(line.error.message || '');
  const r = line.response;
  if (!r || typeof r !== 'object') return '';
  const cand = Array.isArray(r.candidates) ? r.candidates[0] : null;
  const parts = cand?.content && Array.isArray(cand.content.parts) ? cand.content.parts : [];
  const text = parts.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('');
  if (text) return text;
  if (r.promptFeedback?.blockReason) return 'blocked: ' + r.promptFeedback.blockReason;
  return cand?.finishReason ? 'finish reason: ' + cand.finishReason : '';
}

function addResult(line) {
  if (!line || typeof line !== 'object') return;
  received++;
  latest.unshift(line);
  if (latest.length > LATEST) latest.length = LATEST;
  if (!renderTimer) renderTimer = setTimeout(renderResults, 200);
}

function renderResults() {
  renderTimer = null;
  const list = $('results');
  while (list.firstChild) list.removeChild(list.firstChild);
  for (const line of latest) {
    const li = el('li');
    // A line whose input named its key custom_id carries it back under that name.
    const key = line.custom_id !== undefined ? line.custom_id : line.key;
    li.dataset.key = String(key);
    li.appendChild(el('code', key, 'key'));
    li.appendChild(el('span', ' #' + num(line.index), 'muted'));
    const failed = Boolean(line.error);
    li.appendChild(
      el(
        'span',
        failed ? String(line.error.code || '') + ' ' + String(line.error.status || 'error') : 'ok',
        failed ? 'tag err' : 'tag ok',
      ),
    );
    const text = answerText(line);
    li.appendChild(el('span', text.length > 200 ? text.slice(0, 200) + '…' : text, 'snippet'));
    list.appendChild(li);
  }
  $('results-empty').hidden = latest.length > 0;
  $('received').textContent = received ? fmtInt(received) + ' received on this page' : '';
}

function listen() {
  if (typeof EventSource !== 'function') return;
  source = new EventSource(base + '/events');
  source.addEventListener('result', (e) => {
    try {
      addResult(JSON.parse(e.data));
    } catch (_) {
      /* a line that is not JSON is skipped; the counts still come from the polls */
    }
  });
  source.addEventListener('done', (e) => {
    source.close();
    setConn('Finished.', false);
    try {
      apply(JSON.parse(e.data));
    } catch (_) {
      /* the polls still read the final job */
    }
    keepPolling();
  });
  source.onopen = () => setConn('Live.', false);
  source.onerror = () => {
    if (terminal(view)) return;
    if (source.readyState === EventSource.CLOSED)
      setConn('Live results unavailable; counts still refresh.', true);
    else setConn('Reconnecting…', true);
  };
}
