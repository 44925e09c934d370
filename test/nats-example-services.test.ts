import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_URL, uniqueStreamNames } from './support/nats.js';

/**
 * The user-details example as two services on NATS JetStream: a write service (commands; events
 * into the JetStream stream, user names reserved in a KV bucket) and a read service (queries; its
 * projection runner feeds a SQLite read model from the JetStream log). Separate processes, separate
 * data directories: the only thing they share is the NATS server.
 */
const { stream } = uniqueStreamNames('svc');
const dirs: string[] = [];
const children: ChildProcess[] = [];
/** The lag this test allows between an acknowledged command and the read service showing it. */
const LAG_BOUND_MS = 15_000;

function startService(role: 'write' | 'read'): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), `eventfold-nats-${role}-`));
  dirs.push(dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/user-details/serve.ts', '--role', role, '--port', '0'], {
    env: { ...process.env, EVENTFOLD_STORE: NATS_URL, EVENTFOLD_NATS_STREAM: stream, EVENTFOLD_NATS_STORAGE: 'memory', EVENTFOLD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${role} service did not start:\n${output}`)), 45_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} service exited with ${code}:\n${output}`));
    });
  });
}

let writeUrl: string;
let readUrl: string;

beforeAll(async () => {
  writeUrl = await startService('write');
  readUrl = await startService('read');
}, 90_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for (const name of [stream, `KV_${stream}_snapshots`, `KV_${stream}_names`]) await jsm.streams.delete(name).catch(() => false);
  await nc.close();
});

async function json(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function within<T>(ms: number, read: () => Promise<T>, done: (value: T) => boolean): Promise<{ value: T; elapsed: number }> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return { value, elapsed: Date.now() - start };
    if (Date.now() - start > ms) throw new Error(`not there after ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const register = (userId: string, userName: string) =>
  json(`${writeUrl}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, userName, email: `${userName}@example.com`, password: 'correct horse battery' }),
  });

describe('user-details as a write service and a read service on NATS JetStream', () => {
  it('users registered through the write service appear in the read service within the lag bound', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `nats-user-${i}`);
    const results = await Promise.all(ids.map((id, i) => register(id, `natsuser${i}`)));
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 201));
    const { value, elapsed } = await within(
      LAG_BOUND_MS,
      () => json(`${readUrl}/users?limit=100`),
      (r) => r.status === 200 && r.body['total'] === ids.length,
    );
    console.log(`[nats-example] read service caught up ${elapsed} ms after the last acknowledged registration`);
    expect((value.body['users'] as { id: string }[]).map((u) => u.id).sort()).toEqual([...ids].sort());
    const byName = await json(`${readUrl}/users?userName=natsuser3`);
    expect(byName.body).toMatchObject({ id: 'nats-user-3', userName: 'natsuser3', version: 1 });
    // The read service answers no commands, the write service no queries.
    expect((await fetch(`${readUrl}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(405);
  });

  it('a user name stays unique across racing registrations, without a multi-stream append', async () => {
    const racing = await Promise.all(['a', 'b', 'c', 'd'].map((s) => register(`racer-${s}`, 'samename')));
    expect(racing.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of racing.filter((x) => x.status !== 201)) expect(r.status).toBe(409);
    const winner = racing.findIndex((r) => r.status === 201);
    const { value } = await within(LAG_BOUND_MS, () => json(`${readUrl}/users?userName=samename`), (r) => r.status === 200);
    expect(value.body['id']).toBe(`racer-${['a', 'b', 'c', 'd'][winner]}`);
  });
});
