import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import amqp from 'amqplib';
import { InvalidArgumentError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import { consoleLogger, type Logger } from '../logging.js';
import { BrokerUnavailableError, eventHeaders, MessageRefusedError, streamCategory, toEnvelope, type Broker } from '../publishing/broker.js';

export interface RabbitMqBrokerOptions {
  /** `amqp://user:pass@host:5672/vhost`. */
  readonly url: string;
  /** The durable topic exchange events are published to. Default `eventfold.events`. */
  readonly exchange?: string;
  /**
   * The routing key of an event. Default `<category>.<type>` (`user.UserRegistered`), so a queue
   * binds to `user.#` for one category or `#.UserRegistered` for one type. Dots inside a category
   * or type add words to the key.
   */
  readonly routingKey?: (event: RecordedEvent) => string;
  /** Refuse (rather than silently drop) a message no queue is bound for. Default true. */
  readonly mandatory?: boolean;
  /** Shown in the broker's connection list (`rabbitmqctl list_connections user_provided_name`). */
  readonly connectionName?: string;
  /** Longest wait for the broker's confirms of one batch. Default 30,000 ms. */
  readonly confirmTimeoutMs?: number;
  readonly logger?: Logger;
}

const EXCHANGE_NAME = /^[A-Za-z0-9_.:-]{1,255}$/;

/**
 * Publishes events to a RabbitMQ topic exchange with publisher confirms: `publish` resolves once
 * the broker has confirmed every message of the batch, and messages are persistent, so a
 * confirmed message survives a broker restart (on a durable queue). The event id is the AMQP
 * `messageId`; headers carry type, stream, version, position, correlation and causation ids.
 *
 * A lost connection fails the batch in flight with `BrokerUnavailableError` and the next
 * `publish` reconnects; connection and channel errors are caught and reported to `logger`, never
 * left unhandled.
 */
export class RabbitMqBroker implements Broker {
  readonly name = 'rabbitmq';
  readonly exchange: string;
  private readonly routingKey: (event: RecordedEvent) => string;
  private readonly mandatory: boolean;
  private readonly confirmTimeoutMs: number;
  private readonly logger: Logger;
  private connecting: Promise<{ connection: ChannelModel; channel: ConfirmChannel }> | undefined;
  private closed = false;
  private returned: string[] = [];
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RabbitMqBrokerOptions) {
    if (typeof options.url !== 'string' || !/^amqps?:\/\//.test(options.url)) {
      throw new InvalidArgumentError(`RabbitMqBroker needs an amqp:// or amqps:// url.`);
    }
    this.exchange = options.exchange ?? 'eventfold.events';
    if (!EXCHANGE_NAME.test(this.exchange)) {
      throw new InvalidArgumentError(`Invalid exchange name ${JSON.stringify(this.exchange)}: use 1-255 letters, digits, '_', '.', ':' or '-'.`);
    }
    this.routingKey = options.routingKey ?? ((event) => `${streamCategory(event.streamId)}.${event.type}`);
    this.mandatory = options.mandatory ?? true;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
    this.logger = options.logger ?? consoleLogger;
  }

  /** Declares the durable topic exchange (idempotent). `publish` does it too, on every (re)connect. */
  async setup(): Promise<void> {
    await this.channel();
  }

  /** Batches are published one after another, never interleaved (confirms are per channel). */
  publish(events: readonly RecordedEvent[]): Promise<void> {
    const run = this.tail.then(() => this.publishNow(events));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async publishNow(events: readonly RecordedEvent[]): Promise<void> {
    if (this.closed) throw new BrokerUnavailableError(this.name, 'the broker client is closed.');
    if (events.length === 0) return;
    const { channel } = await this.channel();
    this.returned = [];
    try {
      for (const event of events) {
        const body = Buffer.from(JSON.stringify(toEnvelope(event)));
        channel.publish(this.exchange, this.routingKey(event), body, {
          persistent: true,
          mandatory: this.mandatory,
          messageId: event.eventId,
          type: event.type,
          contentType: 'application/json',
          timestamp: Math.floor(event.recordedAt.getTime() / 1000),
          headers: eventHeaders(event),
        });
      }
      await withTimeout(channel.waitForConfirms(), this.confirmTimeoutMs, () => new BrokerUnavailableError(this.name, `no confirms within ${this.confirmTimeoutMs} ms.`));
    } catch (error) {
      this.drop();
      if (error instanceof BrokerUnavailableError) throw error;
      // RabbitMQ nacks only on an internal error of a queue (or a full queue with reject-publish),
      // and a closing channel nacks what is in flight: both pass, so both are retried.
      throw new BrokerUnavailableError(this.name, `publish not confirmed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
    // Returns arrive before the confirm of the same message: all are known now.
    if (this.returned.length > 0) {
      const refused = this.returned;
      this.returned = [];
      throw new MessageRefusedError(this.name, refused, `unroutable: no queue bound on exchange '${this.exchange}'`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.connecting;
    this.connecting = undefined;
    if (pending === undefined) return;
    try {
      const { connection } = await pending;
      await connection.close();
    } catch {
      // Already gone: nothing left to close.
    }
  }

  private channel(): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> {
    if (this.connecting === undefined) {
      const attempt = this.connect();
      this.connecting = attempt;
      attempt.catch(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async connect(): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> {
    let connection: ChannelModel;
    try {
      connection = await amqp.connect(this.options.url, {
        clientProperties: { connection_name: this.options.connectionName ?? 'eventfold relay' },
      });
    } catch (error) {
      throw new BrokerUnavailableError(this.name, `cannot connect: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
    const onLost = (error?: Error): void => {
      this.drop();
      if (!this.closed) this.logger.warn(`rabbitmq connection lost; the next publish reconnects`, { error });
    };
    connection.on('error', (error: Error) => this.logger.warn('rabbitmq connection error', { error }));
    connection.on('close', onLost);
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', (error: Error) => this.logger.warn('rabbitmq channel error', { error }));
      channel.on('close', () => onLost(new Error('channel closed')));
      channel.on('return', (message: Message) => {
        const id = message.properties.messageId as unknown;
        this.returned.push(typeof id === 'string' ? id : '(no message id)');
      });
      await channel.assertExchange(this.exchange, 'topic', { durable: true });
      return { connection, channel };
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw new BrokerUnavailableError(this.name, `cannot open a confirm channel: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }

  private drop(): void {
    const pending = this.connecting;
    this.connecting = undefined;
    void pending?.then(
      ({ connection }) => connection.close().catch(() => undefined),
      () => undefined,
    );
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
