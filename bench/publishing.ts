/**
 * Publishing benchmarks, each side measured in the same run:
 * - relay throughput: OutboxRelay from a SQLite log to RabbitMQ (publisher confirms, persistent)
 *   and to NATS JetStream (acks, Nats-Msg-Id), beside a raw publisher loop doing the same work —
 *   the same messages, in batches of the same size, waiting for the broker's confirms per batch;
 * - subscription catch-up over 1,000,000 events with a type filter matching 10%, beside an
 *   unfiltered catch-up: events/s and peak RSS, each in its own process.
 * Needs RabbitMQ on 127.0.0.1:5672 and NATS on 127.0.0.1:4222.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect, headers as natsHeaders } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { eventHeaders, InMemoryCheckpointStore, OutboxRelay, toEnvelope, type Broker, type RecordedEvent } from '../src/index.js';
import { NatsBroker } from '../src/nats/nats-broker.js';
import { RabbitMqBroker } from '../src/rabbitmq/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { formatNumber, median, printTable, type Row } from './support/measure.js';

const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const EVENTS = 20_000;
const BATCH = 500;
const REPEATS = 3;
const dir = mkdtempSync(join(tmpdir(), 'eventfold-bench-pub-'));
const tag = `${process.pid}_${Date.now().toString(36)}`;

async function seed(file: string, count: number, types: (i: number) => string): Promise<void> {
  const store = new SqliteEventStore({ path: file, synchronous: 'OFF' });
  for (let i = 0; i < count; i += 1000) {
    await store.append(`acct-${(i / 1000) % 50}`, Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ type: types(i + k), data: { n: i + k, note: 'bench' } })), {
      expectedVersion: 'any',
    });
  }
  await store.close();
}

async function relayOnce(file: string, broker: Broker, name: string): Promise<number> {
  const store = new SqliteEventStore({ path: file });
  const relay = new OutboxRelay({ name, store, broker, checkpoints: new InMemoryCheckpointStore(), batchSize: BATCH, pollIntervalMs: 1_000 });
  const started = performance.now();
  await relay.start();
  await relay.waitUntilCaughtUp({ timeoutMs: 300_000 });
  const ms = performance.now() - started;
  await relay.stop();
  await store.close();
  return ms;
}

async function readAllEvents(file: string): Promise<RecordedEvent[]> {
  const store = new SqliteEventStore({ path: file });
  const events = await store.readAll().toArray();
  await store.close();
  return events;
}

const rows: Row[] = [];
const file = join(dir, 'log.sqlite');
await seed(file, EVENTS, (i) => (i % 2 ? 'Credited' : 'Debited'));
const events = await readAllEvents(file);

// ---- RabbitMQ --------------------------------------------------------------------------------
{
  const exchange = `eft.bench.${tag}`;
  const admin = await amqp.connect(RABBITMQ_URL);
  const ch = await admin.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await ch.assertQueue(`eft-bench-${tag}`, { durable: false, autoDelete: false });
  await ch.bindQueue(queue, exchange, '#');
  const relayTimes: number[] = [];
  const rawTimes: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    // Raw: the same messages, the same batches, a confirm wait per batch.
    const conn = await amqp.connect(RABBITMQ_URL);
    const confirm = await conn.createConfirmChannel();
    const started = performance.now();
    for (let i = 0; i < events.length; i += BATCH) {
      for (const event of events.slice(i, i + BATCH)) {
        confirm.publish(exchange, `acct.${event.type}`, Buffer.from(JSON.stringify(toEnvelope(event))), {
          persistent: true,
          mandatory: true,
          messageId: event.eventId,
          contentType: 'application/json',
          headers: eventHeaders(event),
        });
      }
      await confirm.waitForConfirms();
    }
    rawTimes.push(performance.now() - started);
    await conn.close();
    const broker = new RabbitMqBroker({ url: RABBITMQ_URL, exchange });
    relayTimes.push(await relayOnce(file, broker, `bench-rabbit-${r}`));
    await broker.close();
    await ch.purgeQueue(queue);
  }
  await ch.deleteQueue(queue);
  await ch.deleteExchange(exchange);
  await admin.close();
  const relay = median(relayTimes);
  const raw = median(rawTimes);
  rows.push({
    workload: `relay → RabbitMQ, ${formatNumber(EVENTS)} events, batches of ${BATCH}, confirms + persistent`,
    eventfold: `${formatNumber((EVENTS * 1000) / relay)} events/s`,
    baseline: `${formatNumber((EVENTS * 1000) / raw)} events/s (raw amqplib loop)`,
    ratio: `${(raw / relay).toFixed(2)}×`,
    goal: '≥ 0.7×',
    met: raw / relay >= 0.7,
  });
}

// ---- NATS JetStream --------------------------------------------------------------------------
{
  const nc = await natsConnect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const relayTimes: number[] = [];
  const rawTimes: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const rawStream = `EFT_BENCH_RAW_${tag}_${r}`;
    const rawPrefix = `eft_bench_raw_${tag}_${r}`;
    await jsm.streams.add({ name: rawStream, subjects: [`${rawPrefix}.>`] });
    const started = performance.now();
    for (let i = 0; i < events.length; i += BATCH) {
      await Promise.all(
        events.slice(i, i + BATCH).map((event) => {
          const h = natsHeaders();
          for (const [k, v] of Object.entries(eventHeaders(event))) h.set(k, v);
          return js.publish(`${rawPrefix}.acct.${event.type}`, JSON.stringify(toEnvelope(event)), { msgID: event.eventId, headers: h });
        }),
      );
    }
    rawTimes.push(performance.now() - started);
    await jsm.streams.delete(rawStream);
    const relayStream = `EFT_BENCH_RELAY_${tag}_${r}`;
    const broker = new NatsBroker({ servers: NATS_URL, subjectPrefix: `eft_bench_relay_${tag}_${r}`, stream: { name: relayStream } });
    await broker.setup();
    relayTimes.push(await relayOnce(file, broker, `bench-nats-${r}`));
    await broker.close();
    await jsm.streams.delete(relayStream);
  }
  await nc.close();
  const relay = median(relayTimes);
  const raw = median(rawTimes);
  rows.push({
    workload: `relay → NATS JetStream, ${formatNumber(EVENTS)} events, batches of ${BATCH}, acks + Nats-Msg-Id`,
    eventfold: `${formatNumber((EVENTS * 1000) / relay)} events/s`,
    baseline: `${formatNumber((EVENTS * 1000) / raw)} events/s (raw JetStream loop)`,
    ratio: `${(raw / relay).toFixed(2)}×`,
    goal: '≥ 0.7×',
    met: raw / relay >= 0.7,
  });
}
printTable('Relay throughput (ratio = raw time / relay time)', rows);

// ---- Subscription catch-up over 1,000,000 events ---------------------------------------------
const big = join(dir, 'million.sqlite');
const MILLION = 1_000_000;
await seed(big, MILLION, (i) => (i % 10 === 0 ? 'Rare' : 'Common'));
const child = fileURLToPath(new URL('./support/catch-up-child.ts', import.meta.url));
const run = (type: string) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', child, big, type, '1000'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as { matched: number; ms: number; maxRssMb: number };
};
const unfiltered = run('-');
const filtered = run('Rare');
console.log('\n### Subscription catch-up over 1,000,000 SQLite events (each run in its own process)\n');
console.log('| run | events delivered | time | log positions/s | delivered events/s | peak RSS |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, r] of [['unfiltered', unfiltered], ['type filter, 10% match', filtered]] as const) {
  console.log(
    `| ${name} | ${formatNumber(r.matched)} | ${formatNumber(r.ms / 1000)} s | ${formatNumber((MILLION * 1000) / r.ms)} | ${formatNumber((r.matched * 1000) / r.ms)} | ${formatNumber(r.maxRssMb)} MB |`,
  );
}
rmSync(dir, { recursive: true, force: true });
