import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../src/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { NATS_URL } from './support/brokers.js';
import { spawnFixture, until } from './support/child.js';

const temp = sqliteTempDir('eventfold-nats-relay-');
afterAll(() => temp.cleanup());
const tag = `${process.pid}_${Date.now().toString(36)}`;

async function seed(file: string, count: number): Promise<void> {
  const store = new SqliteEventStore({ path: file });
  for (let i = 0; i < count; i += 10) {
    await store.append(`acct-${(i / 10) % 25}`, Array.from({ length: 10 }, (_, k) => ({ type: 'Moved', data: { n: i + k } })), { expectedVersion: 'any' });
  }
  await store.close();
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function startNatsServer(port: number, dir: string): ChildProcess {
  const child = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  child.on('error', () => {});
  return child;
}

/** Every message of the stream, in stream order: what a JetStream consumer would receive. */
async function streamContents(jsm: JetStreamManager, stream: string): Promise<{ id: string; stream: string; version: number }[]> {
  const info = await jsm.streams.info(stream);
  const out = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const envelope = parseEnvelope(m.string());
    out.push({ id: envelope.eventId, stream: envelope.streamId, version: envelope.version });
  }
  return out;
}

function assertOncePerEventInStreamOrder(messages: readonly { id: string; stream: string; version: number }[], total: number): void {
  expect(new Set(messages.map((m) => m.id)).size).toBe(total);
  expect(messages).toHaveLength(total); // the server dropped every re-published duplicate (Nats-Msg-Id)
  const next = new Map<string, number>();
  for (const m of messages) {
    expect(m.version, `stream ${m.stream}`).toBe((next.get(m.stream) ?? 0) + 1);
    next.set(m.stream, m.version);
  }
}

describe('OutboxRelay to NATS JetStream, faults against real servers', () => {
  it('SIGKILL mid-batch, then a restart: every event is in the stream once (deduplicated by event id), in stream order', async () => {
    const file = temp.file('kill.sqlite');
    const total = 1_500;
    await seed(file, total);
    const nc: NatsConnection = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    const stream = `EFT_RELAY_${tag}_kill`;
    const prefix = `eft_relay_${tag}_kill`;
    try {
      const args = [file, 'nats', NATS_URL, prefix, '50', '0', stream];
      const first = spawnFixture('relay-child.ts', args);
      await until(async () => (await jsm.streams.info(stream).catch(() => undefined))?.state.messages! >= 400, 60_000, '400 messages');
      first.process.kill('SIGKILL');
      await first.exited;
      const second = spawnFixture('relay-child.ts', args);
      await second.waitForLine('caught-up', 120_000);
      second.process.kill('SIGTERM');
      await second.exited;
      assertOncePerEventInStreamOrder(await streamContents(jsm, stream), total);
    } finally {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  }, 240_000);

  it('the NATS server stopped and started again (same store dir) while the relay runs: it reconnects and loses nothing', async () => {
    const file = temp.file('restart.sqlite');
    const total = 1_500;
    await seed(file, total);
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const dir = temp.file('nats-store');
    let server = startNatsServer(port, dir);
    const stream = `EFT_RELAY_${tag}_restart`;
    const relay = spawnFixture('relay-child.ts', [file, 'nats', url, `eft_relay_${tag}_restart`, '20', '30', stream]);
    let nc: NatsConnection | undefined;
    try {
      await relay.waitForLine('started', 60_000);
      nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const jsm = await jetstreamManager(nc);
      await until(async () => ((await jsm.streams.info(stream).catch(() => undefined))?.state.messages ?? 0) >= 100, 60_000, '100 messages');
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      await new Promise((r) => setTimeout(r, 1_500));
      server = startNatsServer(port, dir);
      await relay.waitForLine('caught-up', 180_000);
      expect(relay.lines.some((l) => l.startsWith('error '))).toBe(true); // the outage was reported
      const jsmAfter = await jetstreamManager(nc);
      assertOncePerEventInStreamOrder(await streamContents(jsmAfter, stream), total);
    } finally {
      relay.process.kill('SIGKILL');
      await relay.exited;
      await nc?.close().catch(() => undefined);
      server.kill('SIGKILL');
    }
  }, 300_000);
});
