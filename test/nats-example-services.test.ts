import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, waitFor, type NatsCluster } from './support/nats-cluster.js';
import { uniqueStreamNames } from './support/nats.js';

/**
 * The user-details example as two services on NATS JetStream: a write service (commands; events
 * into the JetStream stream, user names reserved and email keys kept in KV buckets) and a read
 * service (queries; its projection runner feeds a SQLite read model from the JetStream log).
 * Separate processes, separate data directories: the only thing they share is the NATS server,
 * a server of this test's own with its own store directory, which the test reads byte for byte.
 */
const { stream } = uniqueStreamNames('svc');
const dirs: string[] = [];
const children: ChildProcess[] = [];
/** The lag this test allows between an acknowledged command and the read service showing it. */
const LAG_BOUND_MS = 15_000;
let server: NatsCluster;

interface Service {
  readonly url: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
}

function startService(role: 'write' | 'read'): Promise<Service> {
  const dataDir = mkdtempSync(join(tmpdir(), `eventfold-nats-${role}-`));
  dirs.push(dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/user-details/serve.ts', '--role', role, '--port', '0'], {
    env: { ...process.env, EVENTFOLD_STORE: server.servers[0], EVENTFOLD_NATS_STREAM: stream, EVENTFOLD_NATS_STORAGE: 'file', EVENTFOLD_DATA_DIR: dataDir },
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
        resolve({ url: match[1]!, dataDir, child });
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

/** SIGTERM, and wait for the clean shutdown (the read model's SQLite file is closed). */
async function stopService(service: Service): Promise<void> {
  if (service.child.exitCode !== null) return;
  const exited = new Promise((resolve) => service.child.once('exit', resolve));
  service.child.kill('SIGTERM');
  await exited;
}

/** Paths (under `dir`) of the files that contain any of `needles`. */
function filesHolding(dir: string, needles: readonly Buffer[]): string[] {
  const files = (d: string): string[] =>
    readdirSync(d).flatMap((name) => {
      const path = join(d, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
  return files(dir)
    .filter((path) => {
      const content = readFileSync(path);
      return needles.some((needle) => content.includes(needle));
    })
    .map((path) => path.slice(dir.length));
}

let writeUrl: string;
let readUrl: string;

let reader: Service;

beforeAll(async () => {
  server = await startNatsCluster({ size: 1 });
  await waitFor('JetStream on the test server', async () => {
    const nc = await connect({ servers: server.servers });
    try {
      await new Kvm(nc).create(`${stream}_ready`);
      return true;
    } finally {
      await nc.close();
    }
  });
  writeUrl = (await startService('write')).url;
  reader = await startService('read');
  readUrl = reader.url;
}, 90_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await server?.stop();
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

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }).then(async (r) => ({
    status: r.status,
    etag: r.headers.get('etag'),
    body: (await r.json()) as Record<string, any>,
  }));

describe('the layers on NATS JetStream: idempotency keys and forget-me', () => {
  const dana = { userId: 'u-dana', userName: 'dana', email: 'dana.secret@example.com', password: 'dana-password-1' };
  const erin = { userId: 'u-erin', userName: 'erin', email: 'erin.kept@example.com', password: 'erin-password-1' };

  it('the same POST twice with one Idempotency-Key registers one user and answers the same', async () => {
    const key = { 'idempotency-key': 'nats-register-dana' };
    const first = await post(`${writeUrl}/users`, dana, key);
    const second = await post(`${writeUrl}/users`, dana, key);
    expect(first.status).toBe(201);
    expect(second).toEqual(first);
    // Concurrent repeats of another request: one effect, one answer.
    const erinKey = { 'idempotency-key': 'nats-register-erin' };
    const answers = await Promise.all([1, 2, 3, 4].map(() => post(`${writeUrl}/users`, erin, erinKey)));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201]);
    expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);
    // Without the key the same request is a new command, which the domain refuses; the key reused
    // for another request is refused, and nothing is written.
    expect((await post(`${writeUrl}/users`, dana)).status).toBe(409);
    const reused = await post(`${writeUrl}/users`, { ...dana, userId: 'u-other', userName: 'other' }, key);
    expect([reused.status, reused.body['code']]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);

    const history = await within(LAG_BOUND_MS, () => json(`${readUrl}/users/u-dana/history`), (r) => r.status === 200);
    expect(history.value.body['events'].map((e: { type: string }) => e.type)).toEqual(['UserRegistered']);
    expect((await json(`${readUrl}/users/u-erin/history`)).body['events']).toHaveLength(1);
    expect((await json(`${readUrl}/users/u-other`)).status).toBe(404);
    // The user name is still held by its one owner.
    expect((await post(`${writeUrl}/users`, { ...dana, userId: 'u-dana2' })).body['code']).toBe('USER_NAME_TAKEN');
  });

  it('repeats racing through two write processes: one claim, one user, one answer, the name kept', async () => {
    const second = await startService('write');
    try {
      for (let round = 0; round < 3; round++) {
        const body = { userId: `u-twin-${round}`, userName: `twin${round}`, email: `twin${round}@example.com`, password: 'twin-password-1' };
        const headers = { 'idempotency-key': `nats-twin-${round}` };
        const answers = await Promise.all([writeUrl, second.url, writeUrl, second.url].map((url) => post(`${url}/users`, body, headers)));
        expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201]);
        expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);
        const history = await within(LAG_BOUND_MS, () => json(`${readUrl}/users/u-twin-${round}/history`), (r) => r.status === 200);
        expect(history.value.body['events'].map((e: { type: string }) => e.type)).toEqual(['UserRegistered']);
        // The losing twin did not free the name it shares with the winner.
        expect((await post(`${second.url}/users`, { ...body, userId: `u-other-${round}` })).body['code']).toBe('USER_NAME_TAKEN');
      }
    } finally {
      await stopService(second);
    }
  }, 90_000);

  it('forget-me: the email is in no file of the NATS server nor in the read model, a rebuilt read model is redacted, the history replays', async () => {
    const storeDir = server.nodes[0]!.storeDir;
    const email = Buffer.from(dana.email);
    // Before: the read model shows the email (so the scans below can fail); JetStream holds it only encrypted.
    await within(LAG_BOUND_MS, () => json(`${readUrl}/users/u-dana`), (r) => r.body['email'] === dana.email);
    await waitFor('the email in the read model file', () => filesHolding(reader.dataDir, [email]).length > 0);
    expect(filesHolding(storeDir, [email, Buffer.from('dana.secret')])).toEqual([]);
    const nc = await connect({ servers: server.servers });
    let danaKey: Buffer;
    let erinKey: Buffer;
    try {
      const keys = await new Kvm(nc).open(`${stream}_keys`);
      const keyOf = async (id: string) => Buffer.from((await keys.get(`s.${id}`))!.json<{ key: string }>().key, 'base64');
      danaKey = await keyOf('u-dana');
      erinKey = await keyOf('u-erin');
    } finally {
      await nc.close();
    }
    const encodings = (key: Buffer) => [key, Buffer.from(key.toString('base64')), Buffer.from(key.toString('hex'))];
    await waitFor("dana's key in the server's files", () => filesHolding(storeDir, encodings(danaKey)).length > 0);

    const forget = await post(`${writeUrl}/users/u-dana/forget`, {}, { 'idempotency-key': 'nats-forget-dana' });
    expect(forget.status).toBe(200);
    expect(forget.body).toEqual({ userId: 'u-dana', version: 2 });
    expect(await post(`${writeUrl}/users/u-dana/forget`, {}, { 'idempotency-key': 'nats-forget-dana' })).toEqual(forget);

    // The server's files: no key, no email; erin's key is still there (the scan sees keys).
    expect(filesHolding(storeDir, encodings(danaKey))).toEqual([]);
    expect(filesHolding(storeDir, [email, Buffer.from('dana.secret')])).toEqual([]);
    expect(filesHolding(storeDir, [Buffer.from(erinKey.toString('base64'))])).not.toEqual([]);

    // The read model redacts the row; the history still replays, redacted, at every version.
    const view = await within(LAG_BOUND_MS, () => json(`${readUrl}/users/u-dana`), (r) => r.body['email'] === '[forgotten]');
    expect(view.value.body).toMatchObject({ email: '[forgotten]', status: 'deactivated', version: 2 });
    const history = await json(`${readUrl}/users/u-dana/history`);
    expect(history.body['events'].map((e: { type: string; version: number; data: { email?: string } }) => [e.type, e.version, e.data.email])).toEqual([
      ['UserRegistered', 1, '[forgotten]'],
      ['UserForgotten', 2, undefined],
    ]);
    expect((await json(`${readUrl}/users/u-dana?version=1`)).body).toMatchObject({ email: '[forgotten]', userName: 'dana', version: 1 });
    // No new personal data for a forgotten user.
    expect((await post(`${writeUrl}/users/u-dana/email`, { email: 'again@example.com' }, { 'if-match': '"2"' })).status).toBe(409);

    // A read model rebuilt from the whole log (a new read service, empty data directory) is redacted too.
    const rebuilt = await startService('read');
    const again = await within(LAG_BOUND_MS, () => json(`${rebuilt.url}/users/u-erin`), (r) => r.status === 200);
    expect(again.value.body['email']).toBe(erin.email);
    expect((await json(`${rebuilt.url}/users/u-dana`)).body).toMatchObject({ email: '[forgotten]', status: 'deactivated', version: 2 });
    await stopService(rebuilt);
    expect(filesHolding(rebuilt.dataDir, [email])).toEqual([]);
    expect(filesHolding(rebuilt.dataDir, [Buffer.from(erin.email)])).not.toEqual([]);

    // The first read model, once its process stopped cleanly, holds no byte of the email either.
    await stopService(reader);
    expect(filesHolding(reader.dataDir, [email, Buffer.from('dana.secret')])).toEqual([]);
    expect(filesHolding(storeDir, encodings(danaKey))).toEqual([]);
  }, 120_000);
});
