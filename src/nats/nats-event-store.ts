import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { CapabilityNotSupportedError, InvalidArgumentError, StoreClosedError } from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventLimits } from '../events/validation.js';
import { silentLogger, type Logger } from '../logging.js';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventStoreCapabilities,
  ReadAllOptions,
  ReadStreamOptions,
  StreamAppend,
} from '../store/event-store.js';
import { PagedEventStream, type EventStream } from '../store/event-stream.js';
import { prepareAppend, prepareAppendMany, resolveLimits } from '../store/store-input.js';
import { NatsAppender } from './appends.js';
import { lastPositionOf, POSITION_STRIDE, type MessageHead } from './codec.js';
import { NatsStreamMissingError } from './errors.js';
import { KnownHeads } from './known-heads.js';
import {
  assertConnectionSource,
  DUPLICATE_WINDOW_MS,
  positiveInteger,
  resolveStreamOptions,
  type NatsEventStoreOptions,
  type NatsExpectedSequence,
  type ResolvedStreamOptions,
} from './options.js';
import { NatsReader } from './reads.js';
import { ensureStream, findStream } from './stream-setup.js';
import { encodeStreamToken } from './subjects.js';
import { retryTransient } from './transient.js';

/** NATS JetStream 2.9 has no atomic publish across subjects: see `appendMany`. */
export const NATS_CAPABILITIES: EventStoreCapabilities = Object.freeze({ atomicMultiStreamAppend: false });

/**
 * The `EventStore` port on a NATS JetStream stream (nats-server 2.9 or later, one node or a
 * cluster). See docs/adapters.md for the mapping; in short:
 *
 * - each append is ONE message on `<prefix>.s.<stream token>` carrying all of its events, so it is
 *   atomic, and its expected version is enforced by the server through
 *   `Nats-Expected-Last-Subject-Sequence` (the sequence of the stream's last message);
 * - positions are `message sequence * 10,000 + index in the message`;
 * - retries after a lost acknowledgement carry the same `Nats-Msg-Id` (the first event's id),
 *   which the server deduplicates, so an append is never stored twice;
 * - `appendMany` across several streams is refused (`capabilities.atomicMultiStreamAppend` is
 *   false): the server cannot publish to several subjects atomically.
 *
 * Create it with `NatsEventStore.create(options)` (connects and runs `migrate()`), or
 * `NatsEventStore.connect(options)` when the stream is known to exist.
 */
export class NatsEventStore implements EventStore {
  readonly capabilities: EventStoreCapabilities = NATS_CAPABILITIES;
  readonly options: ResolvedStreamOptions;
  readonly connection: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly ownsConnection: boolean;
  private readonly limits: EventLimits;
  private readonly pageSize: number;
  private readonly publishTimeoutMs: number;
  private readonly retryWindowMs: number;
  private readonly logger: Logger;
  private readonly reader: NatsReader;
  private readonly appender: NatsAppender;
  private readonly heads = new KnownHeads();
  private manager: JetStreamManager | undefined;
  private maxMessageBytes: number | undefined;
  private readonly expectedSequence: NatsExpectedSequence;
  private closed = false;

  private constructor(connection: NatsConnection, ownsConnection: boolean, options: NatsEventStoreOptions) {
    this.connection = connection;
    this.ownsConnection = ownsConnection;
    this.options = resolveStreamOptions(options);
    this.limits = resolveLimits(options.limits);
    if (this.limits.maxEventsPerAppend > POSITION_STRIDE) {
      throw new InvalidArgumentError(`maxEventsPerAppend must be at most ${POSITION_STRIDE} on NATS (positions are sequence * ${POSITION_STRIDE} + index).`);
    }
    this.pageSize = positiveInteger('pageSize', options.pageSize, 256, 10_000);
    this.publishTimeoutMs = positiveInteger('publishTimeoutMs', options.publishTimeoutMs, 5_000);
    this.retryWindowMs = positiveInteger('retryWindowMs', options.retryWindowMs, 30_000, DUPLICATE_WINDOW_MS - 10_000);
    this.logger = options.logger ?? silentLogger;
    const mode = options.expectedSequence ?? (this.options.replicas > 1 ? 'stream' : 'subject');
    if (mode !== 'subject' && mode !== 'stream') {
      throw new InvalidArgumentError(`expectedSequence must be 'subject' or 'stream', got ${String(mode)}.`);
    }
    this.expectedSequence = mode;
    if (mode === 'subject' && this.options.replicas > 1) {
      this.logger.warn(
        "NATS: expectedSequence 'subject' on a replicated stream: nats-server 2.9 clusters check it before RAFT, " +
          "so concurrent appends to one stream can all be accepted. Use 'stream' unless the servers are newer.",
        { stream: this.options.stream, replicas: this.options.replicas },
      );
    }
    this.js = jetstream(connection, { timeout: this.publishTimeoutMs });
    this.reader = new NatsReader({
      js: this.js,
      jsm: () => this.jsm(),
      stream: this.options.stream,
      eventSubjects: this.options.eventSubjects,
      pageSize: this.pageSize,
      logger: this.logger,
      retry: (what, attempt) => this.retry(what, attempt),
      assertOpen: () => this.assertOpen(),
      lastOf: (streamId) => this.lastOf(streamId),
      subjectOf: (streamId) => this.subjectOf(streamId),
      headOf: (seq) => this.reader.headAt(seq),
    });
    this.appender = new NatsAppender({
      js: this.js,
      reader: this.reader,
      heads: this.heads,
      expectedSequence: this.expectedSequence,
      publishTimeoutMs: this.publishTimeoutMs,
      retry: (what, attempt) => this.retry(what, attempt),
      ready: () => this.ready(),
      lastOf: (streamId) => this.lastOf(streamId),
      subjectOf: (streamId) => this.subjectOf(streamId),
    });
  }

  /** Connects (unless given a connection) without touching the stream; see `create`. */
  static async connect(options: NatsEventStoreOptions): Promise<NatsEventStore> {
    assertConnectionSource(options);
    resolveStreamOptions(options);
    if (options.connection !== undefined) return new NatsEventStore(options.connection, false, options);
    const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
    const connection = await connect({
      servers,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // Async stack traces cost an Error object per request; the store's errors name the call.
      noAsyncTraces: true,
      ...options.connectionOptions,
    });
    try {
      return new NatsEventStore(connection, true, options);
    } catch (error) {
      await connection.close();
      throw error;
    }
  }

  /** Connects and runs `migrate()`. */
  static async create(options: NatsEventStoreOptions): Promise<NatsEventStore> {
    const store = await NatsEventStore.connect(options);
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Creates the JetStream stream, or checks that an existing one fits (subjects, `limits`
   * retention without limits that drop events, replicas, storage, duplicate window). Idempotent,
   * safe to run from several processes at once; never changes an existing stream.
   */
  async migrate(): Promise<void> {
    this.assertOpen();
    const jsm = await this.jsm();
    const info = await this.retry('set up the JetStream stream', () => ensureStream(jsm, this.options, this.retryWindowMs));
    this.maxMessageBytes = this.messageLimit(info.config.max_msg_size);
  }

  /** Largest append (headers + payload) the stream and server accept, in bytes. */
  async maxAppendBytes(): Promise<number> {
    return this.ready();
  }

  async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareAppend(streamId, events, (options as AppendOptions | undefined)?.expectedVersion, this.limits);
    return this.appender.append(prepared);
  }

  /**
   * Atomic only for one stream. An `appendMany` that names two or more streams (even an entry
   * without events, which would be a separate version check) is refused with
   * `CapabilityNotSupportedError` before anything is written; bad input is reported first.
   */
  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.assertOpen();
    const prepared = prepareAppendMany(appends, this.limits);
    if (prepared.length === 0) return [];
    if (prepared.length > 1) {
      throw new CapabilityNotSupportedError(
        'atomicMultiStreamAppend',
        `appendMany across ${prepared.length} streams (${prepared.map((p) => `'${p.streamId}'`).join(', ')}) is not ` +
          `supported on NATS JetStream: the server cannot publish to several subjects atomically. Nothing was written. ` +
          `Append to one stream at a time, or reserve unique values with NatsUniqueValues.`,
      );
    }
    return [await this.appender.append(prepared[0]!)];
  }

  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    return new PagedEventStream(() => this.reader.streamPages(streamId, options));
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    return new PagedEventStream(() => this.reader.logPages(options));
  }

  async streamVersion(streamId: string): Promise<number> {
    this.assertOpen();
    return (await this.lastOf(streamId))?.version ?? 0;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    const last = await this.reader.lastEventMessage();
    return last === undefined ? 0 : lastPositionOf(last);
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the connection the store opened from `servers` (draining it); a passed connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.connection.drain().catch(() => this.connection.close());
  }

  // --- helpers -----------------------------------------------------------------------------

  subjectOf(streamId: string): string {
    return `${this.options.subjectPrefix}.s.${encodeStreamToken(streamId)}`;
  }

  /** The stream's last message (headers only), or undefined when the stream has none. */
  private async lastOf(streamId: string): Promise<MessageHead | undefined> {
    const subject = this.subjectOf(streamId);
    const last = await this.reader.lastOnSubject(subject);
    if (last !== undefined) this.heads.remember(streamId, last.version, last.seq);
    return last;
  }

  private async jsm(): Promise<JetStreamManager> {
    this.manager ??= await jetstreamManager(this.connection, { checkAPI: false, timeout: this.publishTimeoutMs });
    return this.manager;
  }

  /** Loads the stream's message size limit once; a missing stream is `NatsStreamMissingError`. */
  private async ready(): Promise<number> {
    if (this.maxMessageBytes !== undefined) return this.maxMessageBytes;
    const jsm = await this.jsm();
    const info = await this.retry('look up the JetStream stream', () => findStream(jsm, this.options.stream));
    if (info === undefined) throw new NatsStreamMissingError(this.options.stream);
    this.maxMessageBytes = this.messageLimit(info.config.max_msg_size);
    return this.maxMessageBytes;
  }

  private messageLimit(streamMax: number | undefined): number {
    const serverMax = this.connection.info?.max_payload ?? 1_048_576;
    return streamMax !== undefined && streamMax > 0 ? Math.min(streamMax, serverMax) : serverMax;
  }

  private retry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retryTransient(what, this.retryWindowMs, this.logger, attempt, () => this.closed, () => new StoreClosedError('NATS event store'));
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('NATS event store');
  }
}
