/** The event browser's styles (light and dark), served as /app.css. */
export const APP_CSS = String.raw`
:root { color-scheme: light dark; --bg: #fbfbfd; --fg: #1d2330; --muted: #6b7280; --line: #e3e6ec; --accent: #3559e0;
  --key: #7c3aed; --str: #047857; --num: #b45309; --add: #047857; --del: #b91c1c; --chg: #a16207; --sel: #eef2ff; }
@media (prefers-color-scheme: dark) { :root { --bg: #14161c; --fg: #e6e8ee; --muted: #9aa3b2; --line: #2a2f3a; --accent: #7c9cff;
  --key: #c4a7ff; --str: #6ee7b7; --num: #fbbf24; --add: #6ee7b7; --del: #fca5a5; --chg: #fde68a; --sel: #1f2540; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 18px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; } h2 { font-size: 16px; margin: 0 0 10px; word-break: break-all; } h3 { font-size: 13px; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
nav { margin-left: auto; display: flex; gap: 4px; }
.tab { border: 1px solid var(--line); background: transparent; color: var(--fg); padding: 5px 12px; border-radius: 6px; cursor: pointer; }
.tab.active { background: var(--accent); border-color: var(--accent); color: #fff; }
.muted { color: var(--muted); font-weight: normal; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; background: var(--sel); color: var(--accent); font-size: 12px; font-weight: 600; }
main { padding: 14px 18px; }
#view-streams { display: grid; grid-template-columns: 280px 1fr; gap: 18px; }
aside input { width: 100%; padding: 7px 9px; border: 1px solid var(--line); border-radius: 6px; background: transparent; color: var(--fg); }
#stream-list { list-style: none; margin: 8px 0; padding: 0; max-height: 70vh; overflow: auto; }
#stream-list button { display: flex; justify-content: space-between; gap: 8px; width: 100%; text-align: left; padding: 6px 8px; border: 0; border-radius: 6px; background: transparent; color: var(--fg); cursor: pointer; font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
#stream-list button:hover, #stream-list button.selected { background: var(--sel); }
#stream-list .id { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
tbody tr { cursor: pointer; } tbody tr:hover, tbody tr.selected { background: var(--sel); }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
td.data { max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.type { font-weight: 600; }
.panes { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
pre.json { margin: 0; padding: 10px; border: 1px solid var(--line); border-radius: 6px; overflow: auto; max-height: 48vh; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; word-break: break-word; }
.k { color: var(--key); } .s { color: var(--str); } .n { color: var(--num); } .b { color: var(--accent); }
.changes { list-style: none; padding: 0; margin: 0; font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; }
.changes li { padding: 2px 0; word-break: break-word; } .add { color: var(--add); } .del { color: var(--del); } .chg { color: var(--chg); }
#tt-slider { width: 100%; }
.error { color: var(--del); }
button#more-events, button#more-streams { margin-top: 8px; padding: 5px 10px; border: 1px solid var(--line); border-radius: 6px; background: transparent; color: var(--fg); cursor: pointer; }
.state-running { color: var(--add); font-weight: 600; } .state-failed { color: var(--del); font-weight: 600; } .state-retrying { color: var(--chg); font-weight: 600; } .error-cell { max-width: 40em; overflow-wrap: anywhere; } .state-stopped, .state-never-ran, .state-unknown { color: var(--muted); } .lagging { color: var(--chg); font-weight: 600; }
`;
