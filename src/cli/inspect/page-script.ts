/**
 * The event browser's script, built into the package (no CDN, no network). The script builds its
 * DOM with createElement/textContent only — never innerHTML — so stored text cannot become markup.
 * The strings below must not contain backticks or dollar-brace sequences (they are template literals).
 */

export const APP_JS = String.raw`'use strict';
(function () {
  // Stored text may carry control or bidirectional-override characters; show them as \uXXXX.
  var UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
  function visible(value) {
    return String(value).replace(UNSAFE, function (c) { return '\\u' + ('0000' + c.charCodeAt(0).toString(16)).slice(-4); });
  }
  // Stream ids show invisible formatting characters too (a zero-width space, a soft hyphen, …):
  // new ids cannot hold them, ids stored by earlier versions may.
  var INVISIBLE_IN_ID = /[\p{Cf}\u2028\u2029]/gu;
  function visibleId(value) {
    return visible(value).replace(INVISIBLE_IN_ID, function (c) {
      var out = '';
      for (var i = 0; i < c.length; i++) out += '\\u' + ('0000' + c.charCodeAt(i).toString(16)).slice(-4);
      return out;
    });
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
        button.title = visibleId(s.streamId);
        button.appendChild(el('span', 'id', visibleId(s.streamId)));
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
    $('stream-title').textContent = visibleId(streamId);
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
        var tr = el('tr'); var td = el('td', 'muted', 'No projections have a checkpoint in ' + (body.checkpoints || 'this store') + '.'); td.colSpan = 8; tr.appendChild(td); tbody.appendChild(tr);
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
        var error = el('td', 'error-cell');
        error.setAttribute('data-testid', 'projection-error');
        if (p.lastError === null) {
          error.textContent = '-';
        } else {
          if (p.errorCode !== null) error.appendChild(el('span', 'mono error-code', '[' + p.errorCode + '] '));
          error.appendChild(el('span', 'error-message', p.lastError));
          var how = p.lastErrorSource === 'parked' ? 'parked' : 'attempt ' + p.errorAttempts;
          error.appendChild(el('span', 'muted', ' (' + how + (p.errorAt ? ', ' + localTime(p.errorAt) : '') + ')'));
        }
        tr.appendChild(error);
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
