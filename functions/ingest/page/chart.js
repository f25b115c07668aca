// @ts-check
/**
 * The live job page's charts (inlined into the page by page.ts): the
 * request and input-token rates against the model's quota, drawn as inline SVG from successive
 * readings. Plain functions, hoisted inside the page's one script; they read the job script's
 * constants (SVG_NS, readings) at run time.
 */
function renderRates() {
  const quota = view.quota && typeof view.quota === 'object' ? view.quota : null;
  const rpm = rates('requests');
  const tpm = rates('tokens');
  drawChart($('chart-rpm'), rpm, quota ? num(quota.rpm) : 0, 'RPM');
  drawChart($('chart-tpm'), tpm, quota ? num(quota.tpm) : 0, 'TPM');
  $('rpm-caption').textContent = caption('Requests per minute', rpm, quota?.rpm, 'requests');
  $('tpm-caption').textContent = caption('Input tokens per minute', tpm, quota?.tpm, 'tokens');

  const eta = $('eta');
  const last = rpm.length ? rpm[rpm.length - 1].v : 0;
  if (!terminal(view) && last > 0 && num(view.counts.pending) > 0) {
    eta.textContent =
      'about ' + fmtDuration((num(view.counts.pending) / last) * 60000) + ' left at this rate';
  } else eta.textContent = '';
}

function caption(label, points, limit, what) {
  let text = label + ': ';
  if (points.length) text += fmtInt(points[points.length - 1].v) + ' now';
  else if (terminal(view) && view.startedAt && view.finishedAt) {
    const ms = Date.parse(view.finishedAt) - Date.parse(view.startedAt);
    const reading = readings[readings.length - 1];
    const amount = reading ? reading[what] : 0;
    text += ms > 0 ? fmtInt((amount * 60000) / ms) + ' on average' : 'n/a';
  } else text += 'waiting for readings';
  text += limit ? ' · quota ' + fmtInt(limit) + '/min' : ' · no quota known';
  if (view.mode === 'batch' && what === 'requests') text += ' (Batch API items do not count against it)';
  return text;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const k of Object.keys(attrs)) node.setAttribute(k, String(attrs[k]));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A line of rate points over time, with the quota as a dashed line, in a 320×120 view box. */
function drawChart(box, points, limit, unit) {
  while (box.firstChild) box.removeChild(box.firstChild);
  const W = 320,
    H = 120,
    L = 36,
    R = 8,
    T = 10,
    B = 18;
  const top = niceMax(Math.max(limit, ...points.map((p) => p.v)) * 1.1);
  const now = points.length ? points[points.length - 1].t : Date.now();
  const span = Math.max(30000, points.length ? now - points[0].t : 0);
  const x = (t) => L + ((t - (now - span)) / span) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (const v of [0, top / 2, top]) {
    box.appendChild(svg('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    box.appendChild(
      svg('text', { class: 'axis', x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, fmtCompact(v)),
    );
  }
  box.appendChild(svg('text', { class: 'axis', x: L, y: H - 4 }, '-' + fmtDuration(span)));
  box.appendChild(svg('text', { class: 'axis', x: W - R, y: H - 4, 'text-anchor': 'end' }, 'now'));
  if (limit > 0) {
    box.appendChild(svg('line', { class: 'limit', x1: L, x2: W - R, y1: y(limit), y2: y(limit) }));
    box.appendChild(
      svg(
        'text',
        { class: 'limit-label', x: W - R, y: y(limit) - 3, 'text-anchor': 'end' },
        'quota ' + fmtCompact(limit) + ' ' + unit,
      ),
    );
  }
  if (points.length < 2) {
    const note = terminal(view) ? 'not open while it ran' : 'waiting for readings';
    box.appendChild(
      svg('text', { class: 'axis', x: (L + W - R) / 2, y: (T + H - B) / 2, 'text-anchor': 'middle' }, note),
    );
    return;
  }
  const coords = points.map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1));
  const floor = y(0).toFixed(1);
  box.appendChild(
    svg('polygon', {
      class: 'area',
      points:
        x(points[0].t).toFixed(1) +
        ',' +
        floor +
        ' ' +
        coords.join(' ') +
        ' ' +
        x(now).toFixed(1) +
        ',' +
        floor,
    }),
  );
  box.appendChild(svg('polyline', { class: 'line', points: coords.join(' ') }));
}
