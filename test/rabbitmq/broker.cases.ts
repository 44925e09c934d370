import { execFileSync } from 'node:child_process';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryEventStore, silentLogger, type RecordedEvent } from '../../src/index.js';
import { BrokerUnavailableError, EVENT_HEADERS, MessageRefusedError, parseEnvelope, RabbitMqBroker } from '../../src/rabbitmq/index.js';
import { RABBITMQ_URL } from '../support/brokers.js';

let admin: ChannelModel;
let channel: Channel;
const suffix = `${process.pid}-${Date.now().toString(36)}`;

beforeAll(async () => {
  admin = await amqp.connect(RABBITMQ_URL);
  admin.on('error', () => {});
  channel = await admin.createChannel();
  channel.on('error', () => {});
});
afterAll(async () => {
  // The relay's restart test (same file, later) closes this connection from the broker's side.
  await admin.close().catch(() => undefined);
});

async function recorded(count: number): Promise<RecordedEvent[]> {
  const store = new InMemoryEventStore();
  for (let i = 0; i < count; i++) {
    await store.append(`user-${i % 3}`, [{ type: i % 2 === 0 ? 'UserRegistered' : 'PasswordChanged', data: { i } , metadata: { correlationId: `c-${i}`, causationId: `k-${i}` } }], {
      expectedVersion: 'any',
    });
  }
  return store.readAll().toArray();
}

async function boundQueue(exchange: string, pattern: string): Promise<{ queue: string; messages: ConsumeMessage[] }> {
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, pattern);
  const messages: ConsumeMessage[] = [];
  await channel.consume(queue, (m) => m && messages.push(m), { noAck: true });
  return { queue, messages };
}

/** Closes, from the server side, the client connections with this name (a forced close, as on a failover). */
function closeConnectionsNamed(name: string): void {
  const listing = execFileSync('rabbitmqctl', ['-q', 'list_connections', 'pid', 'client_properties'], { encoding: 'utf8' });
  const pids = listing
    .split('\n')
    .filter((line) => line.includes(`"${name}"`))
    .map((line) => line.split('\t')[0]!.trim());
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) execFileSync('rabbitmqctl', ['-q', 'close_connection', pid, 'test: forced close'], { stdio: 'ignore' });
}

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RabbitMqBroker', () => {
  it('publishes in order, persistent, with the event id as message id and the eventfold headers', async () => {
    const exchange = `eft.events.${suffix}.a`;
    const { messages } = await boundQueue(exchange, 'user.#');
    const broker = new RabbitMqBroker({ url: RABBITMQ_URL, exchange });
    const events = await recorded(50);
    await broker.publish(events.slice(0, 20));
    await broker.publish(events.slice(20));
    await until(() => messages.length === 50);
    expect(messages.map((m) => m.properties.messageId)).toEqual(events.map((e) => e.eventId));
    const first = messages[0]!;
    expect(first.properties.deliveryMode).toBe(2);
    expect(first.fields.routingKey).toBe('user.UserRegistered');
    expect(first.properties.headers).toMatchObject({
      [EVENT_HEADERS.type]: 'UserRegistered',
      [EVENT_HEADERS.streamId]: 'user-0',
      [EVENT_HEADERS.version]: '1',
      [EVENT_HEADERS.position]: '1',
      [EVENT_HEADERS.correlationId]: 'c-0',
      [EVENT_HEADERS.causationId]: 'k-0',
    });
    const envelope = parseEnvelope(first.content);
    expect(envelope).toMatchObject({ eventId: events[0]!.eventId, streamId: 'user-0', version: 1, position: 1, data: { i: 0 } });
    await broker.close();
  });

  it('an unroutable message is refused with its event id, never dropped silently', async () => {
    const exchange = `eft.events.${suffix}.unbound`;
    const broker = new RabbitMqBroker({ url: RABBITMQ_URL, exchange });
    const events = await recorded(3);
    const error = await broker.publish(events).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageRefusedError);
    expect((error as MessageRefusedError).eventIds).toEqual(events.map((e) => e.eventId));
    await broker.close();
  });

  it('an unreachable broker is a BrokerUnavailableError', async () => {
    const broker = new RabbitMqBroker({ url: 'amqp://guest:guest@127.0.0.1:1', exchange: 'x' });
    await expect(broker.publish(await recorded(1))).rejects.toBeInstanceOf(BrokerUnavailableError);
    await broker.close();
  });

  it('reconnects by itself after the broker closed its connection', async () => {
    const exchange = `eft.events.${suffix}.reconnect`;
    const { messages } = await boundQueue(exchange, '#');
    const name = `eft-reconnect-${suffix}`;
    const broker = new RabbitMqBroker({ url: RABBITMQ_URL, exchange, connectionName: name, logger: silentLogger });
    const events = await recorded(4);
    await broker.publish(events.slice(0, 2));
    closeConnectionsNamed(name);
    let published = false;
    for (let attempt = 0; attempt < 5 && !published; attempt++) {
      try {
        await broker.publish(events.slice(2));
        published = true;
      } catch (error) {
        expect(error).toBeInstanceOf(BrokerUnavailableError);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(published).toBe(true);
    await until(() => new Set(messages.map((m) => m.properties.messageId)).size === 4);
    await broker.close();
  });

  it('rejects bad options with a typed error', () => {
    expect(() => new RabbitMqBroker({ url: 'http://x' })).toThrow(/amqp/);
    expect(() => new RabbitMqBroker({ url: RABBITMQ_URL, exchange: 'bad name*' })).toThrow(/exchange/);
  });
});
