/**
 * The event browser's page, built into the package (no CDN, no network). The script builds its
 * DOM with createElement/textContent only — never innerHTML — so stored text cannot become markup.
 * The strings below must not contain backticks or dollar-brace sequences (they are template literals).
 */

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
.state-running { color: var(--add); font-weight: 600; } .state-stopped, .state-never-ran { color: var(--muted); } .lagging { color: var(--chg); font-weight: 600; }
`;

export const APP_JS = String.raw`'use strict';
(function () {
  // Stored text may carry control or bidirectional-override characters; show them as \uXXXX.
  var UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
  function visible(value) {
    return String(value).replace(UNSAFE, function (c) { return '\\u' + ('0000' + c.charCodeAt(0).toString(16)).slice(-4); });
  }
  function $(id) { return document.getElementById(id); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = visible(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  var errorBox = $('error');
  function showError(error) { errorBox.textContent = visible(error && error.message ? error.message : error); errorBox.hidden = false; }
  function clearError() { errorBox.hidden = true; errorBox.textContent = ''; }

  function api(path, params) {
    var query = params ? '?' + new URLSearchParams(params).toString() : '';
    return fetch('/api/' + path + query, { headers: { accept: 'application/json' } }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + response.status);
        return body;
      });
    });
  }

  // JSON as coloured text nodes (keys, strings, numbers), built without markup parsing.
  function renderJson(value, indent) {
    indent = indent || '';
    var frag = document.createDocumentFragment();
    // Layout (brackets, newlines, indentation) is ours; stored text goes through el() and visible().
    function text(t, cls) { frag.appendChild(cls ? el('span', cls, t) : document.createTextNode(t)); }
    if (value === null || value === undefined) { text('null', 'b'); return frag; }
    if (typeof value === 'string') { text(JSON.stringify(value), 's'); return frag; }
    if (typeof value === 'number') { text(String(value), 'n'); return frag; }
    if (typeof value === 'boolean') { text(String(value), 'b'); return frag; }
    var inner = indent + '  ';
    if (Array.isArray(value)) {
      if (value.length === 0) { text('[]'); return frag; }
      text('[\n');
      value.forEach(function (item, i) {
        text(inner); frag.appendChild(renderJson(item, inner)); text(i < value.length - 1 ? ',\n' : '\n');
      });
      text(indent + ']');
      return frag;
    }
    var keys = Object.keys(value);
    if (keys.length === 0) { text('{}'); return frag; }
    text('{\n');
    keys.forEach(function (key, i) {
      text(inner); text(JSON.stringify(key), 'k'); text(': ');
      frag.appendChild(renderJson(value[key], inner)); text(i < keys.length - 1 ? ',\n' : '\n');
    });
    text(indent + '}');
    return frag;
  }
  function showJson(node, value) { clear(node); node.appendChild(renderJson(value, '')); }

  function pathText(path) {
    if (path.length === 0) return '(whole value)';
    return path.map(function (p, i) { return typeof p === 'number' ? '[' + p + ']' : (i === 0 ? '' : '.') + p; }).join('');
  }
  function short(value) {
    var s = JSON.stringify(value === undefined ? null : value);
    return s.length > 160 ? s.slice(0, 159) + '…' : s;
  }
  function showChanges(list, changes, emptyText) {
    clear(list);
    if (!changes || changes.length === 0) { list.appendChild(el('li', 'muted', emptyText)); return; }
    changes.forEach(function (c) {
      if (c.kind === 'added') list.appendChild(el('li', 'add', '+ ' + pathText(c.path) + ': ' + short(c.after)));
      else if (c.kind === 'removed') list.appendChild(el('li', 'del', '- ' + pathText(c.path) + ': ' + short(c.before)));
      else list.appendChild(el('li', 'chg', '~ ' + pathText(c.path) + ': ' + short(c.before) + ' → ' + short(c.after)));
    });
  }
  function localTime(iso) { var d = new Date(iso); return isNaN(d.getTime()) ? iso : d.toLocaleString(); }
  function metadataText(metadata) {
    if (!metadata || typeof metadata !== 'object') return '';
    var keys = Object.keys(metadata);
    return keys.length === 0 ? '' : JSON.stringify(metadata);
  }

  // ---- tabs
  var current = 'streams';
  var timers = {};
  function selectTab(name) {
    current = name;
    Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (tab) {
      tab.classList.toggle('active', tab.getAttribute('data-tab') === name);
    });
    ['streams', 'log', 'projections'].forEach(function (view) { $('view-' + view).hidden = view !== name; });
    Object.keys(timers).forEach(function (k) { clearInterval(timers[k]); delete timers[k]; });
    if (name === 'log') { pollLog(); timers.log = setInterval(pollLog, 1000); }
    if (name === 'projections') { loadProjections(); timers.projections = setInterval(loadProjections, 2000); }
  }
  Array.prototype.forEach.call(document.querySelectorAll('.tab'), function (tab) {
    tab.addEventListener('click', function () { selectTab(tab.getAttribute('data-tab')); });
  });

  // ---- streams
  var streamList = $('stream-list');
  var moreStreams = $('more-streams');
  var prefix = '';
  var nextStreams = null;
  var selectedStream = null;
  function loadStreams(append) {
    var params = { prefix: prefix, limit: '50' };
    if (append && nextStreams) params.after = nextStreams;
    return api('streams', params).then(function (body) {
      clearError();
      if (!append) clear(streamList);
      body.streams.forEach(function (s) {
        var li = el('li');
        var button = el('button');
        button.type = 'button';
        button.setAttribute('data-stream', s.streamId);
        button.setAttribute('data-testid', 'stream-item');
        button.title = visible(s.streamId);
        button.appendChild(el('span', 'id', s.streamId));
        button.appendChild(el('span', 'badge', 'v' + s.version));
        if (s.streamId === selectedStream) button.classList.add('selected');
        button.addEventListener('click', function () { openStream(s.streamId); });
        li.appendChild(button);
        streamList.appendChild(li);
      });
      if (!append && body.streams.length === 0) streamList.appendChild(el('li', 'muted', 'No streams.'));
      nextStreams = body.next;
      moreStreams.hidden = !body.next;
    }).catch(showError);
  }
  var searchTimer = null;
  $('stream-search').addEventListener('input', function (event) {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { prefix = event.target.value; loadStreams(false); }, 200);
  });
  moreStreams.addEventListener('click', function () { loadStreams(true); });

  var eventsBody = $('events').querySelector('tbody');
  var moreEvents = $('more-events');
  var streamVersion = 0;
  var nextFrom = 1;
  var aggregate = null;
  function openStream(streamId) {
    selectedStream = streamId;
    location.hash = 'stream=' + encodeURIComponent(streamId);
    Array.prototype.forEach.call(streamList.querySelectorAll('button'), function (b) {
      b.classList.toggle('selected', b.getAttribute('data-stream') === streamId);
    });
    clear(eventsBody);
    nextFrom = 1;
    $('stream-empty').hidden = true;
    $('stream-body').hidden = false;
    $('stream-title').textContent = visible(streamId);
    clear($('event-json')); clear($('event-changes')); $('event-title').textContent = '';
    return loadEvents(streamId).then(function () {
      var first = eventsBody.querySelector('tr');
      if (first) first.click();
      setupTimeTravel(streamId);
    });
  }
  function loadEvents(streamId) {
    return api('stream', { id: streamId, from: String(nextFrom), limit: '100' }).then(function (body) {
      clearError();
      if (streamId !== selectedStream) return;
      streamVersion = body.version;
      aggregate = body.aggregate;
      $('stream-version').textContent = 'v' + body.version;
      body.events.forEach(function (e) {
        var tr = el('tr');
        tr.setAttribute('data-testid', 'event-row');
        tr.setAttribute('data-version', String(e.version));
        tr.appendChild(el('td', 'mono', e.version));
        tr.appendChild(el('td', 'type', e.type));
        tr.appendChild(el('td', 'mono', e.position));
        tr.appendChild(el('td', '', localTime(e.recordedAt)));
        tr.appendChild(el('td', 'mono data', metadataText(e.metadata)));
        tr.addEventListener('click', function () { showEvent(e, tr); });
        eventsBody.appendChild(tr);
        nextFrom = e.version + 1;
      });
      moreEvents.hidden = nextFrom > body.version;
    }).catch(showError);
  }
  moreEvents.addEventListener('click', function () { if (selectedStream) loadEvents(selectedStream); });
  function showEvent(e, row) {
    Array.prototype.forEach.call(eventsBody.querySelectorAll('tr'), function (r) { r.classList.toggle('selected', r === row); });
    $('event-title').textContent = visible('v' + e.version + ' ' + e.type);
    showJson($('event-json'), {
      streamId: e.streamId, version: e.version, position: e.position, type: e.type,
      eventId: e.eventId, recordedAt: e.recordedAt, data: e.data, metadata: e.metadata
    });
    showChanges($('event-changes'), e.changes, e.version === 1 ? 'First event of the stream.' : 'No change to the data.');
  }

  // ---- time travel
  var slider = $('tt-slider');
  var ttTimer = null;
  var ttRequest = 0;
  function setupTimeTravel(streamId) {
    var pane = $('time-travel');
    if (!aggregate) { pane.hidden = true; return; }
    pane.hidden = false;
    $('tt-aggregate').textContent = visible(aggregate);
    slider.max = String(streamVersion);
    slider.value = String(streamVersion);
    loadState(streamId, streamVersion);
  }
  function loadState(streamId, version) {
    var request = ++ttRequest;
    return api('state', { id: streamId, version: String(version) }).then(function (frame) {
      if (request !== ttRequest) return;
      clearError();
      $('tt-version').textContent = String(frame.version);
      $('tt-event').textContent = frame.event ? visible('after v' + frame.event.version + ' ' + frame.event.type + ' (position ' + frame.event.position + ')') : 'before the first event';
      showJson($('tt-state'), frame.state);
      showChanges($('tt-changes'), frame.changes, frame.version === 0 ? 'The initial state.' : 'This event changed nothing visible.');
    }).catch(showError);
  }
  slider.addEventListener('input', function () {
    clearTimeout(ttTimer);
    var version = Number(slider.value);
    $('tt-version').textContent = String(version);
    ttTimer = setTimeout(function () { if (selectedStream) loadState(selectedStream, version); }, 60);
  });

  // ---- live log
  var logBody = $('log').querySelector('tbody');
  var logNext = null;
  var logBusy = false;
  function pollLog() {
    if (logBusy || $('log-pause').checked) return;
    logBusy = true;
    var params = logNext === null ? { limit: '100' } : { from: String(logNext), limit: '200' };
    api('log', params).then(function (body) {
      clearError();
      $('head').textContent = 'head ' + body.headPosition;
      body.events.forEach(function (e) {
        var tr = el('tr');
        tr.setAttribute('data-testid', 'log-row');
        tr.appendChild(el('td', 'mono', e.position));
        tr.appendChild(el('td', 'mono', e.streamId));
        tr.appendChild(el('td', 'mono', e.version));
        tr.appendChild(el('td', 'type', e.type));
        tr.appendChild(el('td', '', localTime(e.recordedAt)));
        tr.appendChild(el('td', 'mono data', JSON.stringify(e.data)));
        tr.addEventListener('click', function () { selectTab('streams'); openStream(e.streamId); });
        logBody.insertBefore(tr, logBody.firstChild);
        logNext = e.position + 1;
      });
      if (logNext === null) logNext = body.headPosition + 1;
      while (logBody.childNodes.length > 500) logBody.removeChild(logBody.lastChild);
    }).catch(showError).then(function () { logBusy = false; });
  }

  // ---- projections
  function loadProjections() {
    api('projections').then(function (body) {
      clearError();
      var tbody = $('projections').querySelector('tbody');
      clear(tbody);
      if (body.projections.length === 0) {
        var tr = el('tr'); var td = el('td', 'muted', 'No projections have a checkpoint in this store.'); td.colSpan = 8; tr.appendChild(td); tbody.appendChild(tr);
      }
      body.projections.forEach(function (p) {
        var tr = el('tr');
        tr.setAttribute('data-testid', 'projection-row');
        tr.appendChild(el('td', 'mono', p.projection));
        tr.appendChild(el('td', 'state-' + p.state, p.state + (p.needsRebuild ? ' (needs rebuild)' : '')));
        tr.appendChild(el('td', 'mono', p.position));
        tr.appendChild(el('td', p.lag > 0 ? 'mono lagging' : 'mono', p.lag));
        tr.appendChild(el('td', 'mono', p.version === null ? '-' : p.version));
        tr.appendChild(el('td', p.parked > 0 ? 'mono lagging' : 'mono', p.parked));
        tr.appendChild(el('td', '', p.updatedAt ? localTime(p.updatedAt) : '-'));
        tr.appendChild(el('td', '', p.lastError || '-'));
        tbody.appendChild(tr);
      });
    }).catch(showError);
  }

  // ---- start
  api('info').then(function (info) {
    $('store').textContent = visible(info.store);
    $('head').textContent = 'head ' + info.headPosition;
  }).catch(showError);
  loadStreams(false).then(function () {
    var match = /^#stream=(.*)$/.exec(location.hash);
    if (match) {
      try { openStream(decodeURIComponent(match[1])); } catch (e) { showError(e); }
    }
  });
})();
`;
