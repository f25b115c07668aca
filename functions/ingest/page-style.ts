/**
 * The one stylesheet of the job pages, inlined in a `<style>` element (its hash is in the pages'
 * Content-Security-Policy, so it must stay a constant). Readable from a phone up: one column that
 * grows into a grid, system fonts, light and dark schemes. Scripts set widths through the CSSOM
 * (`el.style.width`), which the policy allows; no `style="…"` attribute is ever written.
 */
export const PAGE_STYLE = `
:root {
  color-scheme: light dark;
  --bg: #fff; --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --card: #f5f7f9;
  --ok: #1a7f37; --err: #c62828; --cancel: #8a8f98; --pending: #e3e7ec; --accent: #1f6feb; --quota: #c77700;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --fg: #e6e9ed; --muted: #9aa4af; --line: #2c333b; --card: #171b21;
    --ok: #3fb950; --err: #f85149; --cancel: #8b949e; --pending: #262c33; --accent: #58a6ff; --quota: #e3a008;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
a { color: var(--accent); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
h1 { font-size: 1.35rem; margin: 0.25rem 0 0.5rem; overflow-wrap: anywhere; }
h2 { font-size: 1rem; margin: 0 0 0.6rem; color: var(--muted); font-weight: 600; }
nav { font-size: 0.9rem; }
section, .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 0.9rem; margin: 0 0 1rem; }
.grid { display: grid; gap: 1rem; grid-template-columns: 1fr; margin-bottom: 1rem; }
.grid section { margin: 0; }
.stack { display: flex; flex-direction: column; gap: 1rem; }
@media (min-width: 44rem) { .grid { grid-template-columns: 1fr 1fr; } }
.head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem; margin-bottom: 1rem; }
.meta { color: var(--muted); font-size: 0.9rem; display: flex; flex-wrap: wrap; gap: 0.25rem 0.9rem; margin: 0; }
.badge {
  display: inline-block; padding: 0.1rem 0.6rem; border-radius: 999px; font-size: 0.85rem; font-weight: 600;
  background: var(--pending); color: var(--fg); text-transform: capitalize;
}
.badge.s-running { background: var(--accent); color: #fff; }
.badge.s-succeeded { background: var(--ok); color: #fff; }
.badge.s-failed { background: var(--err); color: #fff; }
.badge.s-cancelled { background: var(--cancel); color: #fff; }
.bar { display: flex; height: 1.1rem; border-radius: 6px; overflow: hidden; background: var(--pending); }
.bar.mini { height: 0.45rem; border-radius: 3px; margin: 0.35rem 0; }
.seg { width: 0; transition: width 0.4s ease; }
.seg.ok { background: var(--ok); } .seg.err { background: var(--err); } .seg.cancel { background: var(--cancel); }
.progress-line { display: flex; justify-content: space-between; flex-wrap: wrap; gap: 0.5rem; margin: 0.5rem 0 0.75rem; }
.percent { font-size: 1.4rem; font-weight: 700; }
.muted { color: var(--muted); }
dl.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(6.5rem, 1fr)); gap: 0.5rem; margin: 0; }
dl.counts > div { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 0.4rem 0.6rem; }
dl.counts dt { font-size: 0.8rem; color: var(--muted); }
dl.counts dd { margin: 0; font-size: 1.15rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
dd.c-succeeded { color: var(--ok); } dd.c-failed { color: var(--err); } dd.c-cancelled { color: var(--cancel); }
figure { margin: 0 0 0.75rem; }
figcaption { font-size: 0.85rem; color: var(--muted); }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid-line { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 10px; }
svg.chart .area { fill: var(--accent); opacity: 0.15; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; stroke-linejoin: round; }
svg.chart .limit { stroke: var(--quota); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg.chart .limit-label { fill: var(--quota); font-size: 10px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
ol.results, ul.jobs { list-style: none; margin: 0; padding: 0; }
ol.results { max-height: 32rem; overflow-y: auto; }
ol.results li, ul.jobs li { padding: 0.45rem 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
ol.results li:last-child, ul.jobs li:last-child { border-bottom: 0; }
.key { font-weight: 600; }
.tag { font-size: 0.75rem; font-weight: 700; padding: 0 0.4rem; border-radius: 4px; margin: 0 0.35rem; }
.tag.ok { color: var(--ok); border: 1px solid var(--ok); } .tag.err { color: var(--err); border: 1px solid var(--err); }
.snippet { display: block; color: var(--muted); font-size: 0.9rem; margin-top: 0.15rem; }
button {
  font: inherit; font-weight: 600; padding: 0.5rem 1rem; border-radius: 8px; min-height: 2.75rem;
  border: 1px solid var(--err); background: transparent; color: var(--err); cursor: pointer;
}
button.armed { background: var(--err); color: #fff; }
button.plain { border-color: var(--line); color: var(--fg); }
button:disabled { opacity: 0.45; cursor: default; }
.conn { font-size: 0.85rem; color: var(--muted); min-height: 1.2rem; margin: 0 0 0.5rem; }
.conn.bad { color: var(--err); }
.notice { border-left: 4px solid var(--quota); padding: 0.5rem 0.75rem; background: var(--card); margin: 0 0 1rem; }
.jobs .row { display: flex; justify-content: space-between; gap: 0.5rem; align-items: baseline; flex-wrap: wrap; }
[hidden] { display: none !important; }
`;
