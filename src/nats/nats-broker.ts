import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { InvalidArgumentError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import { silentLogger, type Logger } from '../logging.js';
import { BrokerUnavailableError, eventHeaders, streamCategory, toEnvelope, type Broker } from '../publishing/broker.js';
import { encodeToken } from './subjects.js';

export interface NatsBrokerOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`; or pass `connection`. */
  readonly servers?: string | readonly string[];
  /** A connection you own (not closed by `close()`). */
  readonly connection?: NatsConnection;
  /** First subject token. Default `events`: events go to `events.<category>.<type>`. */
  readonly subjectPrefix?: string;
  /** The subject of an event (must be captured by a JetStream stream). Default `<prefix>.<category>.<type>`, tokens encoded. */
  readonly subject?: (event: RecordedEvent) => string;
  /**
   * The JetStream stream that captures `<prefix>.>`; `setup()` creates it when missing.
   * Default name `EVENTFOLD_OUT`, 1 replica, file storage, 2-minute duplicate window.
   */
  readonly stream?: { readonly name?: string; readonly replicas?: number; readonly duplicateWindowMs?: number };
  /** Longest wait for one publish acknowledgement. Default 10,000 ms. */
  readonly publishTimeoutMs?: number;
  readonly logger?: Logger;
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Publishes events to NATS JetStream: one message per event on `<prefix>.<category>.<type>`, the
 * event id as `Nats-Msg-Id` so the server drops a re-published duplicate within the stream's
 * duplicate window, the eventfold headers on every message, and `publish` resolves once every
 * message was acknowledged as stored by the stream. Tokens that are not plain letters, digits,
 * `_` or `-` are written as `=XX` bytes, so no wildcard (`*`, `>`) or extra token can reach a subject.
 */
export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly subjectPrefix: string;
  readonly streamName: string;
  private readonly subject: (event: RecordedEvent) => string;
  private readonly publishTimeoutMs: number;
  private readonly logger: Logger;
  private connecting: Promise<{ nc: NatsConnection; js: JetStreamClient }> | undefined;
  private closed = false;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: NatsBrokerOptions) {
    if (options.connection === undefined && options.servers === undefined) {
      throw new InvalidArgumentError('NatsBroker needs { servers } or { connection }.');
    }
    this.subjectPrefix = options.subjectPrefix ?? 'events';
    if (!TOKEN.test(this.subjectPrefix)) {
      throw new InvalidArgumentError(`NatsBroker: subjectPrefix must be one token of A-Z, a-z, 0-9, '_' or '-', got ${JSON.stringify(this.subjectPrefix)}.`);
    }
    this.streamName = options.stream?.name ?? 'EVENTFOLD_OUT';
    if (!TOKEN.test(this.streamName)) {
      throw new InvalidArgumentError(`NatsBroker: stream.name must be 1-64 of A-Z, a-z, 0-9, '_' or '-', got ${JSON.stringify(this.streamName)}.`);
    }
    this.subject =
      options.subject ?? ((event) => `${this.subjectPrefix}.${encodeToken(streamCategory(event.streamId))}.${encodeToken(event.type)}`);
    this.publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
    this.logger = options.logger ?? silentLogger;
  }

  /** Creates the stream capturing `<prefix>.>` when it does not exist (idempotent). */
  async setup(): Promise<void> {
    const { nc } = await this.client();
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(this.streamName);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== 10059) throw this.unavailable('read the stream', error);
      const window = this.options.stream?.duplicateWindowMs ?? 120_000;
      await jsm.streams.add({
        name: this.streamName,
        subjects: [`${this.subjectPrefix}.>`],
        num_replicas: this.options.stream?.replicas ?? 1,
        duplicate_window: window * 1_000_000,
      });
    }
  }

  /** Batches are published one after another; within a batch messages are sent in order on one connection. */
  publish(events: readonly RecordedEvent[]): Promise<void> {
    const run = this.tail.then(() => this.publishNow(events));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async publishNow(events: readonly RecordedEvent[]): Promise<void> {
    if (this.closed) throw new BrokerUnavailableError(this.name, 'the broker client is closed.');
    if (events.length === 0) return;
    const { js } = await this.client();
    // Sent back to back on one connection: the server stores them in this order; then wait for every ack.
    const acks = events.map((event) => {
      const h = natsHeaders();
      for (const [key, value] of Object.entries(eventHeaders(event))) h.set(key, value);
      return js
        .publish(this.subject(event), JSON.stringify(toEnvelope(event)), { msgID: event.eventId, headers: h, timeout: this.publishTimeoutMs })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
    });
    const failures = (await Promise.all(acks)).map((error, i) => ({ error, event: events[i]! })).filter((f) => f.error !== undefined);
    if (failures.length === 0) return;
    const first = failures[0]!.error;
    // "No responders": no stream captures the subject, or its stream has no leader yet (an
    // election). Both are reported and retried; the message says which subject to capture.
    const hint = isNoResponders(first) ? ` (no JetStream stream answered for '${this.subject(failures[0]!.event)}': is it captured by a stream, and does that stream have a leader?)` : '';
    throw this.unavailable(`publish ${failures.length} of ${events.length} message(s)${hint}`, first);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = this.connecting;
    this.connecting = undefined;
    if (pending === undefined || this.options.connection !== undefined) return;
    try {
      await (await pending).nc.close();
    } catch {
      // Already closed.
    }
  }

  private client(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    if (this.connecting === undefined) {
      const attempt = (async () => {
        let nc: NatsConnection;
        try {
          nc = this.options.connection ?? (await connect({ servers: this.options.servers as string | string[], maxReconnectAttempts: -1, name: 'eventfold relay' }));
        } catch (error) {
          throw this.unavailable('connect', error);
        }
        void (async () => {
          for await (const status of nc.status()) {
            if (status.type === 'disconnect' || status.type === 'error') this.logger.warn(`nats ${status.type}; the client reconnects by itself`, { status });
          }
        })().catch(() => undefined);
        return { nc, js: jetstream(nc, { timeout: this.publishTimeoutMs }) };
      })();
      this.connecting = attempt;
      attempt.catch(() => {
        if (this.connecting === attempt) this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private unavailable(what: string, error: unknown): BrokerUnavailableError {
    return new BrokerUnavailableError(this.name, `cannot ${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, {
      cause: error,
    });
  }
}

function isNoResponders(error: unknown): boolean {
  // The client reports a publish nobody answered as 'JetStreamNotEnabled'.
  return error instanceof Error && (error.name === 'NoRespondersError' || error.name === 'JetStreamNotEnabled' || /no responders/i.test(error.message));
}
