// @ts-check
/**
 * The job page's steps (a pipeline: a job with `steps` in its view): a row per step, in step order,
 * with its own progress bar (its units are items × branches: a fan-out step has one per model or
 * prompt variant), its counts, tokens and cost, and each model's share of a fan-out step. Redrawn
 * from the job view on every reading; a job without steps keeps the section hidden.
 *
 * Same rule as the common script: text only, never HTML from a string.
 */

/** Draws `view.steps` into the steps section. */
function renderSteps(view) {
  const steps = Array.isArray(view.steps) ? view.steps : [];
  $('steps-section').hidden = steps.length === 0;
  const list = $('steps');
  while (list.firstChild) list.removeChild(list.firstChild);
  for (const step of steps) list.appendChild(stepRow(step));
}

function stepRow(step) {
  const c = step.counts && typeof step.counts === 'object' ? step.counts : {};
  const total = num(c.total);
  const done = doneOf(c);
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const models = Array.isArray(step.models) ? step.models : [];

  const li = el('li', null, 'step');
  li.dataset.step = String(step.name);
  const head = el('div', null, 'step-head');
  head.appendChild(el('strong', step.name, 'step-name'));
  head.appendChild(el('span', models.join(' // '), 'muted mono'));
  head.appendChild(el('span', pct + '% · ' + fmtInt(done) + ' of ' + fmtInt(total), 'step-done'));
  li.appendChild(head);

  const box = el('div', null, 'bar mini');
  box.setAttribute('role', 'progressbar');
  box.setAttribute('aria-label', 'Step ' + step.name + ' finished');
  box.setAttribute('aria-valuemin', '0');
  box.setAttribute('aria-valuemax', '100');
  box.setAttribute('aria-valuenow', String(pct));
  const segments = [el('span', null, 'seg ok'), el('span', null, 'seg err'), el('span', null, 'seg cancel')];
  for (const s of segments) box.appendChild(s);
  setBar(segments, c);
  li.appendChild(box);

  li.appendChild(el('p', stepFigures(c, step.usage, step.costUsd), 'step-figures'));
  const byModel = step.byModel && typeof step.byModel === 'object' ? Object.keys(step.byModel) : [];
  if (byModel.length > 1) {
    const ul = el('ul', null, 'step-models');
    for (const model of byModel) {
      const m = step.byModel[model] || {};
      const item = el('li', model + ': ' + stepFigures(m, m.usage, m.costUsd));
      item.dataset.model = model;
      ul.appendChild(item);
    }
    li.appendChild(ul);
  }
  return li;
}

/** `9 succeeded · 1 failed · 0 pending · 1,200 in / 300 out tokens · $0.0012` (what the view has). */
function stepFigures(counts, usage, costUsd) {
  const parts = [fmtInt(counts.succeeded) + ' succeeded', fmtInt(counts.failed) + ' failed'];
  if (num(counts.cancelled)) parts.push(fmtInt(counts.cancelled) + ' cancelled');
  if (counts.pending !== undefined) parts.push(fmtInt(counts.pending) + ' pending');
  const u = usage && typeof usage === 'object' ? usage : {};
  parts.push(fmtInt(u.promptTokens) + ' in / ' + fmtInt(u.outputTokens) + ' out tokens');
  parts.push(fmtUsd(costUsd));
  return parts.join(' · ');
}
