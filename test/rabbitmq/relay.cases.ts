import { execFileSync } from 'node:child_process';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../src/index.js';
import { SqliteEventStore, SqliteInbox } from '../../src/sqlite/index.js';
import { sqliteTempDir } from '../fixtures/sqlite-temp.js';
import { RABBITMQ_URL } from '../support/brokers.js';
import { spawnFixture, until } from '../support/child.js';

const temp = sqliteTempDir('eventfold-relay-');
afterAll(() => temp.cleanup());
const tag = `${process.pid}-${Date.now().toString(36)}`;
const BATCH = 50;

async function seed(file: string, count: number, streams: number): Promise<void> {
  const store = new SqliteEventStore({ path: file });
  for (let i = 0; i < count; i += 10) {
    const stream = `acct-${(i / 10) % streams}`;
    await store.append(stream, Array.from({ length: 10 }, (_, k) => ({ type: k % 2 ? 'Credited' : 'Debited', data: { n: i + k } })), { expectedVersion: 'any' });
  }
  await store.close();
}

/** The receiving service: a durable queue consumed through an inbox; every delivery is recorded. */
async function consumer(exchange: string, queue: string) {
  const inbox = new SqliteInbox({ path: ':memory:' });
  inbox.database.exec('CREATE TABLE effects (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL)');
  const record = inbox.database.prepare('INSERT INTO effects (stream, version) VALUES (?, ?)');
  const deliveries: { id: string; stream: string; version: number }[] = [];
  let connection: ChannelModel | undefined;
  const connect = async (): Promise<void> => {
    connection = await amqp.connect(RABBITMQ_URL);
    connection.on('error', () => {});
    const channel: Channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.assertExchange(exchange, 'topic', { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, '#');
    await channel.prefetch(100);
    await channel.consume(queue, (message) => {
      if (message === null) return;
      const envelope = parseEnvelope(message.content);
      deliveries.push({ id: envelope.eventId, stream: envelope.streamId, version: envelope.version });
      void inbox
        .handle('ledger', envelope.eventId, () => void record.run(envelope.streamId, envelope.version))
        .then(
          () => {
            try {
              channel.ack(message);
            } catch {
              // The channel closed with the broker: the message is redelivered, the inbox drops it.
            }
          },
          () => undefined,
        );
    });
  };
  await connect();
  return {
    deliveries,
    effects: () => inbox.database.prepare('SELECT stream, version FROM effects ORDER BY seq').all() as { stream: string; version: number }[],
    reconnect: connect,
    close: async () => {
      await connection?.close().catch(() => undefined);
      inbox.close();
    },
  };
}

function assertExactlyOnceInOrder(effects: readonly { stream: string; version: number }[], total: number): void {
  expect(effects).toHaveLength(total);
  const next = new Map<string, number>();
  for (const e of effects) {
    expect(e.version, `stream ${e.stream}`).toBe((next.get(e.stream) ?? 0) + 1);
    next.set(e.stream, e.version);
  }
}

describe('OutboxRelay to RabbitMQ, faults against the real broker', () => {
  it('SIGKILL mid-batch, then a restart: every event arrives, duplicates only within one batch, the inbox makes the effect exactly once and in stream order', async () => {
    const file = temp.file('kill.sqlite');
    const total = 1_500;
    await seed(file, total, 30);
    const exchange = `eft.relay.${tag}.kill`;
    const queue = `eft-relay-${tag}-kill`;
    const sink = await consumer(exchange, queue);
    try {
      const first = spawnFixture('relay-child.ts', [file, 'rabbitmq', RABBITMQ_URL, exchange, String(BATCH), '0']);
      await until(() => sink.deliveries.length >= 400, 60_000, '400 deliveries');
      first.process.kill('SIGKILL');
      await first.exited;
      expect(sink.deliveries.length).toBeLessThan(total); // it really died mid-way
      const second = spawnFixture('relay-child.ts', [file, 'rabbitmq', RABBITMQ_URL, exchange, String(BATCH), '0']);
      await second.waitForLine('caught-up', 120_000);
      await until(() => sink.effects().length === total, 60_000, 'every effect');
      second.process.kill('SIGTERM');
      await second.exited;
      const ids = new Set(sink.deliveries.map((d) => d.id));
      expect(ids.size).toBe(total);
      expect(sink.deliveries.length - total).toBeLessThanOrEqual(BATCH);
      assertExactlyOnceInOrder(sink.effects(), total);
    } finally {
      await sink.close();
    }
  }, 240_000);

  it('the broker stopped and started while the relay runs: the relay reconnects by itself and loses nothing', async () => {
    const file = temp.file('restart.sqlite');
    const total = 2_000;
    await seed(file, total, 20);
    const exchange = `eft.relay.${tag}.restart`;
    const queue = `eft-relay-${tag}-restart`;
    const sink = await consumer(exchange, queue);
    const relay = spawnFixture('relay-child.ts', [file, 'rabbitmq', RABBITMQ_URL, exchange, '20', '40']);
    try {
      await until(() => sink.deliveries.length >= 100, 60_000, '100 deliveries');
      execFileSync('rabbitmqctl', ['-q', 'stop_app'], { stdio: 'ignore', timeout: 60_000 });
      await new Promise((r) => setTimeout(r, 2_000));
      execFileSync('rabbitmqctl', ['-q', 'start_app'], { stdio: 'ignore', timeout: 120_000 });
      await until(async () => {
        try {
          await sink.reconnect();
          return true;
        } catch {
          return false;
        }
      }, 60_000, 'consumer reconnect');
      await relay.waitForLine('caught-up', 120_000);
      await until(() => sink.effects().length === total, 60_000, 'every effect');
      expect(relay.lines.some((l) => l.startsWith('error '))).toBe(true); // the outage was reported
      assertExactlyOnceInOrder(sink.effects(), total);
    } finally {
      relay.process.kill('SIGKILL');
      await relay.exited;
      // Leave the broker running for whatever comes next, whatever happened above.
      execFileSync('rabbitmqctl', ['-q', 'start_app'], { stdio: 'ignore', timeout: 120_000 });
      await sink.close();
    }
  }, 300_000);
});
