import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../src/cli/inspect/server.js';
import type { SqliteEventStore } from '../src/sqlite/index.js';
import { startInspect, XSS_NAME, XSS_STREAM, type InspectCase } from './support/inspect-fixture.js';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A raw HTTP request, so the test controls the Host header and method. */
function send(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; noHost?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, setHost: options.noHost !== true };
    const req = request(target, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function getJson(port: number, path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const reply = await send(port, path);
  expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  return { status: reply.status, json: JSON.parse(reply.body) as Record<string, unknown> };
}

describe('eventfold inspect: HTTP server (SQLite store, spawned)', () => {
  let c: InspectCase;
  beforeAll(async () => {
    c = await startInspect('sqlite');
  });
  afterAll(async () => {
    await c?.close();
  });

  it('serves the page with a strict CSP and no outside resources', async () => {
    const page = await send(c.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toMatch(/https?:\/\//);
    for (const asset of ['/app.js', '/app.css']) {
      const reply = await send(c.port, asset);
      expect(reply.status).toBe(200);
      expect(reply.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
      expect(reply.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    }
    const script = await send(c.port, '/app.js');
    expect(script.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it('answers only to 127.0.0.1 and localhost Host names on its own port (DNS rebinding)', async () => {
    expect((await send(c.port, '/api/info', { headers: { host: `localhost:${c.port}` } })).status).toBe(200);
    expect((await send(c.port, '/api/info', { headers: { host: `127.0.0.1:${c.port}` } })).status).toBe(200);
    for (const host of [`evil.example:${c.port}`, 'evil.example', `127.0.0.1:${c.port + 1}`, `localhost.evil.example:${c.port}`]) {
      const reply = await send(c.port, '/api/streams', { headers: { host } });
      expect(reply.status, host).toBe(421);
      expect(reply.body).not.toContain('user-1');
    }
    // Without a Host header Node itself answers 400 (HTTP/1.1 requires one); either way, no data.
    expect([400, 421]).toContain((await send(c.port, '/api/streams', { noHost: true })).status);
  });

  it('is read-only and refuses cross-site requests', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const reply = await send(c.port, '/api/info', { method });
      expect(reply.status, method).toBe(405);
      expect(reply.headers['allow']).toBe('GET, HEAD');
    }
    expect((await send(c.port, '/api/streams', { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await send(c.port, '/api/streams', { headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
    expect((await send(c.port, '/../package.json')).status).toBe(404);
    expect((await send(c.port, '/api/nothing')).status).toBe(404);
  });

  it('lists and pages streams by prefix', async () => {
    const all = await getJson(c.port, '/api/streams?limit=2');
    expect((all.json['streams'] as { streamId: string }[]).map((s) => s.streamId)).toEqual(['order-1', 'user-1']);
    expect(all.json['next']).toBe('user-1');
    const next = await getJson(c.port, '/api/streams?limit=2&after=user-1');
    expect((next.json['streams'] as { streamId: string }[]).map((s) => s.streamId)).toEqual(['user-2', XSS_STREAM]);
    const users = await getJson(c.port, `/api/streams?prefix=${encodeURIComponent('user-')}`);
    expect((users.json['streams'] as { streamId: string; version: number }[]).map((s) => [s.streamId, s.version])).toEqual([
      ['user-1', 3],
      ['user-2', 1],
      [XSS_STREAM, 2],
    ]);
  });

  it('returns a stream page with each event and its difference to the previous one', async () => {
    const { status, json } = await getJson(c.port, '/api/stream?id=user-1&from=2&limit=1');
    expect(status).toBe(200);
    expect(json).toMatchObject({ streamId: 'user-1', version: 3, aggregate: 'user' });
    const [event] = json['events'] as Record<string, unknown>[];
    expect(event).toMatchObject({ version: 2, type: 'EmailChanged', metadata: { correlationId: 'req-17' } });
    expect(event!['changes']).toEqual([
      { path: ['name'], kind: 'removed', before: 'Ada' },
      { path: ['email'], kind: 'changed', before: 'ada@example.com', after: 'ada@lovelace.org' },
    ]);
    expect((await getJson(c.port, '/api/stream?id=user-404')).status).toBe(404);
    expect((await getJson(c.port, '/api/stream?id=user-1&from=abc')).status).toBe(400);
  });

  it('folds the aggregate to any version (time travel) and says what each event changed', async () => {
    const at = async (version: number) => (await getJson(c.port, `/api/state?id=user-1&version=${version}`)).json;
    expect(await at(0)).toMatchObject({ version: 0, state: { name: '', email: '', renames: 0 }, changes: [], event: null, maxVersion: 3 });
    expect(await at(1)).toMatchObject({ state: { name: 'Ada', email: 'ada@example.com', renames: 0 } });
    const v3 = await at(3);
    expect(v3).toMatchObject({ state: { name: 'Ada Lovelace', email: 'ada@lovelace.org', renames: 1 }, event: { type: 'UserRenamed' } });
    expect(v3['changes']).toEqual([
      { path: ['name'], kind: 'changed', before: 'Ada', after: 'Ada Lovelace' },
      { path: ['renames'], kind: 'changed', before: 0, after: 1 },
    ]);
    expect((await getJson(c.port, '/api/state?id=user-1&version=4')).status).toBe(400);
    expect((await getJson(c.port, '/api/state?id=order-1')).status).toBe(404);
  });

  it('serves hostile stored text only as JSON data', async () => {
    const reply = await send(c.port, `/api/stream?id=${encodeURIComponent(XSS_STREAM)}`);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    const json = JSON.parse(reply.body) as { streamId: string; events: { data: { name: string } }[] };
    expect(json.streamId).toBe(XSS_STREAM);
    expect(json.events[0]!.data.name).toBe(XSS_NAME);
  });

  it('shows the global log and projection status', async () => {
    const log = await getJson(c.port, '/api/log?from=1&limit=3');
    expect((log.json['events'] as { position: number }[]).length).toBe(3);
    const head = await c.store.headPosition();
    expect(log.json['headPosition']).toBe(head);
    const projections = await getJson(c.port, '/api/projections');
    expect(projections.json['projections']).toEqual([
      expect.objectContaining({ projection: 'user-emails', state: 'never-ran', lag: head, inConfig: true }),
    ]);
  });

  it('opens a stream an earlier version stored under an id with a bidi override (new streams may not take it)', async () => {
    const legacy = 'order-\u202egnp.exe';
    const db = (c.store as SqliteEventStore).database;
    db.prepare(
      `INSERT INTO eventfold_events (position, stream_id, version, type, data, metadata, event_id, recorded_at)
       VALUES ((SELECT max(position) + 1 FROM eventfold_events), ?, 1, 'OrderPlaced', '{"total":7}', NULL, '00000000-0000-4000-8000-0000000000b1', 0)`,
    ).run(legacy);
    const { status, json } = await getJson(c.port, `/api/stream?id=${encodeURIComponent(legacy)}`);
    expect(status).toBe(200);
    expect(json).toMatchObject({ streamId: legacy, version: 1, events: [{ type: 'OrderPlaced', data: { total: 7 } }] });
  });
});

describe('eventfold inspect --aggregates <module> (no config file)', () => {
  it('takes the aggregates for time travel from the module given', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { SqliteEventStore } = await import('../src/sqlite/index.js');
    const { LiveCli, sourceUrl } = await import('./support/cli-process.js');
    const dir = mkdtempSync(join(tmpdir(), 'eventfold-inspect-aggregates-'));
    const path = join(dir, 'events.db');
    const store = new SqliteEventStore({ path });
    await store.append('user-5', [{ type: 'UserRegistered', data: { name: 'Kay', email: 'kay@example.com' } }], { expectedVersion: 'no-stream' });
    await store.close();
    writeFileSync(
      join(dir, 'aggregates.mjs'),
      `import { User } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\nexport const aggregates = [{ streamPrefix: 'user', aggregate: User, state: (u) => ({ shown: u.name }) }];\n`,
    );
    const live = LiveCli.start(['inspect', '--port', '0', '--db', path, '--aggregates', 'aggregates.mjs'], { cwd: dir });
    try {
      const out = await live.waitFor((s) => /Listening on http:\/\/127\.0\.0\.1:\d+\//.test(s), 60_000);
      const port = Number(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1]);
      const { status, json } = await getJson(port, '/api/state?id=user-5&version=1');
      expect(status).toBe(200);
      expect(json).toMatchObject({ aggregate: 'user', version: 1, state: { shown: 'Kay' }, previousState: { shown: '' } });
    } finally {
      live.child.kill('SIGINT');
      await live.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
