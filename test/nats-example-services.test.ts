import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchJson as json, readUntil, startService, stopServices, type RunningService } from './example-support.js';
import { NATS_URL, uniqueStreamNames } from './support/nats.js';

/**
 * The user-details example as two services on NATS JetStream: a write service (commands; events
 * into the JetStream stream, user names reserved in a KV bucket) and a read service (queries; its
 * projection runner feeds a SQLite read model from the JetStream log). Separate processes, separate
 * data directories: the only thing they share is the NATS server.
 */
const { stream } = uniqueStreamNames('svc');
const dirs: string[] = [];
const services: RunningService[] = [];
/** The lag this test allows between an acknowledged command and the read service showing it. */
const LAG_BOUND_MS = 15_000;

/** Each service has a data directory of its own (the read service's SQLite read model). */
async function startRole(role: 'write' | 'read'): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), `eventfold-nats-${role}-`));
  dirs.push(dataDir);
  const service = await startService(['--role', role], {
    EVENTFOLD_STORE: NATS_URL,
    EVENTFOLD_NATS_STREAM: stream,
    EVENTFOLD_NATS_STORAGE: 'memory',
    EVENTFOLD_DATA_DIR: dataDir,
  });
  services.push(service);
  return service.url;
}

let writeUrl: string;
let readUrl: string;

beforeAll(async () => {
  writeUrl = await startRole('write');
  readUrl = await startRole('read');
}, 90_000);

afterAll(async () => {
  await stopServices(services);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for (const name of [stream, `KV_${stream}_snapshots`, `KV_${stream}_names`]) await jsm.streams.delete(name).catch(() => false);
  await nc.close();
});

const within = <T>(ms: number, read: () => Promise<T>, done: (value: T) => boolean) => readUntil(read, done, ms);

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
