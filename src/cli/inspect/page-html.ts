/** The event browser's page; its script and styles are served from the same origin (see page-script.ts). */
export const APP_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>eventfold inspect</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>eventfold <span class="muted">inspect</span></h1>
  <span id="store" class="muted" data-testid="store"></span>
  <span id="head" class="badge" data-testid="head"></span>
  <nav>
    <button type="button" class="tab active" data-tab="streams" data-testid="tab-streams">Streams</button>
    <button type="button" class="tab" data-tab="log" data-testid="tab-log">Live log</button>
    <button type="button" class="tab" data-tab="projections" data-testid="tab-projections">Projections</button>
  </nav>
</header>
<main>
  <section id="view-streams" class="view">
    <aside>
      <input id="stream-search" data-testid="stream-search" type="search" placeholder="Stream id prefix…" autocomplete="off" spellcheck="false">
      <ul id="stream-list" data-testid="stream-list"></ul>
      <button type="button" id="more-streams" data-testid="more-streams" hidden>More streams</button>
    </aside>
    <div id="stream-detail">
      <p id="stream-empty" class="muted">Pick a stream on the left.</p>
      <div id="stream-body" hidden>
        <h2><span id="stream-title" data-testid="stream-title"></span> <span id="stream-version" class="badge" data-testid="stream-version"></span></h2>
        <table id="events" data-testid="events">
          <thead><tr><th>Version</th><th>Type</th><th>Position</th><th>Recorded</th><th>Metadata</th></tr></thead>
          <tbody></tbody>
        </table>
        <button type="button" id="more-events" data-testid="more-events" hidden>Next events</button>
        <div class="panes">
          <div class="pane">
            <h3>Event <span id="event-title" class="muted" data-testid="event-title"></span></h3>
            <pre id="event-json" class="json" data-testid="event-json"></pre>
            <h3>Changed since the previous event</h3>
            <ul id="event-changes" class="changes" data-testid="event-changes"></ul>
          </div>
          <div class="pane" id="time-travel" data-testid="time-travel" hidden>
            <h3>Time travel: <span id="tt-aggregate"></span> at version <span id="tt-version" data-testid="tt-version"></span></h3>
            <input id="tt-slider" data-testid="tt-slider" type="range" min="0" max="0" step="1" value="0">
            <p id="tt-event" class="muted" data-testid="tt-event"></p>
            <pre id="tt-state" class="json" data-testid="tt-state"></pre>
            <h3>What this event changed</h3>
            <ul id="tt-changes" class="changes" data-testid="tt-changes"></ul>
          </div>
        </div>
      </div>
    </div>
  </section>
  <section id="view-log" class="view" hidden>
    <p class="muted">The global log, newest first, refreshed every second. <label><input type="checkbox" id="log-pause" data-testid="log-pause"> pause</label></p>
    <table id="log" data-testid="log">
      <thead><tr><th>Position</th><th>Stream</th><th>Version</th><th>Type</th><th>Recorded</th><th>Data</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section id="view-projections" class="view" hidden>
    <table id="projections" data-testid="projections">
      <thead><tr><th>Projection</th><th>State</th><th>Position</th><th>Lag</th><th>Version</th><th>Parked</th><th>Updated</th><th>Last error</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <p id="error" class="error" data-testid="error" hidden></p>
</main>
</body>
</html>
`;
