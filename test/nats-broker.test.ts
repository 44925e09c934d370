import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerUnavailableError, EVENT_HEADERS, InMemoryEventStore, parseEnvelope, type RecordedEvent } from '../src/index.js';
import { NatsBroker } from '../src/nats/nats-broker.js';
import { NATS_URL } from './support/brokers.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
const tag = `${process.pid}_${Date.now().toString(36)}`;
const created: string[] = [];

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  for (const name of created) await jsm.streams.delete(name).catch(() => undefined);
  await nc.close();
});

async function recorded(count: number): Promise<RecordedEvent[]> {
  const store = new InMemoryEventStore();
  for (let i = 0; i < count; i++) {
    await store.append(`order-${i % 4}`, [{ type: i % 3 === 0 ? 'OrderPlaced' : 'Order.Paid*', data: { i }, metadata: { correlationId: `c-${i}` } }], {
      expectedVersion: 'any',
    });
  }
  return store.readAll().toArray();
}

async function storedMessages(stream: string): Promise<{ subject: string; id: string | undefined; body: string; headers: Record<string, string> }[]> {
  const js = jetstream(nc);
  const info = await jsm.streams.info(stream);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    const headers: Record<string, string> = {};
    for (const [k] of m.header ?? []) headers[k] = m.header!.get(k);
    out.push({ subject: m.subject, id: m.header?.get('Nats-Msg-Id'), body: m.string(), headers });
  }
  void js;
  return out;
}

describe('NatsBroker', () => {
  it('publishes in order to <prefix>.<category>.<type> with encoded tokens, headers and the event id as Nats-Msg-Id', async () => {
    const stream = `EFT_OUT_${tag}_a`;
    created.push(stream);
    const broker = new NatsBroker({ servers: NATS_URL, subjectPrefix: `eft_${tag}_a`, stream: { name: stream } });
    await broker.setup();
    await broker.setup(); // idempotent
    const events = await recorded(30);
    await broker.publish(events);
    const messages = await storedMessages(stream);
    expect(messages.map((m) => m.id)).toEqual(events.map((e) => e.eventId));
    expect(messages[0]!.subject).toBe(`eft_${tag}_a.order.OrderPlaced`);
    expect(messages[1]!.subject).toBe(`eft_${tag}_a.order.Order=2EPaid=2A`); // '.' and '*' never reach the subject
    expect(messages[0]!.headers).toMatchObject({ [EVENT_HEADERS.streamId]: 'order-0', [EVENT_HEADERS.version]: '1', [EVENT_HEADERS.correlationId]: 'c-0' });
    expect(parseEnvelope(messages[5]!.body)).toMatchObject({ eventId: events[5]!.eventId, position: events[5]!.position, data: { i: 5 } });
    await broker.close();
  });

  it('a re-published batch (a relay retry) is stored once: the server deduplicates by event id', async () => {
    const stream = `EFT_OUT_${tag}_dup`;
    created.push(stream);
    const broker = new NatsBroker({ servers: NATS_URL, subjectPrefix: `eft_${tag}_dup`, stream: { name: stream } });
    await broker.setup();
    const events = await recorded(10);
    await broker.publish(events.slice(0, 6));
    await broker.publish(events); // the first six again, then four new
    const messages = await storedMessages(stream);
    expect(messages.map((m) => m.id)).toEqual(events.map((e) => e.eventId));
    await broker.close();
  });

  it('a subject no stream captures is reported with the subject, not dropped', async () => {
    const broker = new NatsBroker({ servers: NATS_URL, subjectPrefix: `eft_${tag}_nowhere`, publishTimeoutMs: 2_000 });
    const error = await broker.publish(await recorded(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect(String((error as Error).message)).toContain(`eft_${tag}_nowhere.order`);
    await broker.close();
  });

  it('an unreachable server is a BrokerUnavailableError; bad options are refused', async () => {
    const broker = new NatsBroker({ servers: 'nats://127.0.0.1:1' });
    await expect(broker.publish(await recorded(1))).rejects.toBeInstanceOf(BrokerUnavailableError);
    await broker.close();
    expect(() => new NatsBroker({ servers: NATS_URL, subjectPrefix: 'a.>' })).toThrow(/subjectPrefix/);
    expect(() => new NatsBroker({})).toThrow(/servers/);
  });
});
