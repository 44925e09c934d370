import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { CapabilityNotSupportedError, expectedVersionConflict, InvalidArgumentError, StoreClosedError } from '../errors.js';
import { newId } from '../events/ids.js';
import { frozenDate } from '../events/frozen-date.js';
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
import { checkExpectedVersion } from '../store/expected-version.js';
import { prepareAppend, prepareAppendMany, recordEvents, resolveLimits, type PreparedAppend } from '../store/store-input.js';
import {
  decodeEvents,
  encodePayload,
  lastPositionOf,
  POSITION_STRIDE,
  type MessageHead,
} from './codec.js';
import { NatsStreamMissingError } from './errors.js';
import { KnownHeads, type Base } from './known-heads.js';
import { assertFitsOneMessage, publishAppend, type PublishExpectation, type PublishOutcome } from './publish.js';
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
  private readonly heads = new KnownHeads();
  private manager: JetStreamManager | undefined;
  private maxMessageBytes: number | undefined;
  /** 'stream' mode: this store's appends go one at a time (the server admits one per sequence anyway). */
  private serial: Promise<unknown> = Promise.resolve();
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
      headOf: (seq) => this.messageAt(seq),
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
    return this.appendPrepared(prepared);
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
    return [await this.appendPrepared(prepared[0]!)];
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

  // --- appends -----------------------------------------------------------------------------

  private async appendPrepared(append: PreparedAppend): Promise<AppendResult> {
    const { streamId, expectedVersion } = append;
    if (append.events.length === 0) {
      const actual = (await this.lastOf(streamId))?.version ?? 0;
      checkExpectedVersion(streamId, expectedVersion, actual);
      return Object.freeze({ streamId, version: actual, position: 0, events: Object.freeze([]) as readonly RecordedEvent[] });
    }
    const limit = await this.ready();
    const subject = this.subjectOf(streamId);
    const eventIds = append.events.map(() => newId());
    if (this.expectedSequence === 'subject') return this.appendLoop(append, subject, eventIds, limit);
    const turn = this.serial.then(() => this.appendLoop(append, subject, eventIds, limit));
    this.serial = turn.catch(() => undefined);
    return turn;
  }

  private async appendLoop(append: PreparedAppend, subject: string, eventIds: string[], limit: number): Promise<AppendResult> {
    const { streamId, expectedVersion } = append;
    // Where the stream ends now, as far as we know: version and the sequence of its last message.
    let base = await this.startingPoint(append);
    for (let conflicts = 0; ; conflicts++) {
      const recordedAt = Date.now();
      const payload = encodePayload(streamId, base.version + 1, recordedAt, append.events, eventIds);
      assertFitsOneMessage(streamId, subject, payload, limit);
      const version = base.version + append.events.length;
      // The sequence the server must find: the subject's last (exact on one server, and for a
      // new stream everywhere) or, in 'stream' mode, the whole stream's last.
      const checkStream = this.expectedSequence === 'stream' && base.seq > 0;
      if (checkStream && base.head === undefined) {
        base = await this.reread(append);
        continue;
      }
      const expect = checkStream ? { lastSequence: base.head! } : { lastSubjectSequence: base.seq };
      const outcome = await this.publish(subject, payload, eventIds[0]!, expect, base.seq, version, append.events.length);
      if ('ack' in outcome) {
        this.heads.observe(outcome.ack.seq, true);
        if (outcome.ack.duplicate) return this.fromStoredMessage(streamId, outcome.ack.seq);
        this.heads.remember(streamId, version, outcome.ack.seq);
        const firstPosition = outcome.ack.seq * POSITION_STRIDE;
        const events = recordEvents(append, base.version + 1, (i) => firstPosition + i, frozenDate(recordedAt), eventIds);
        return Object.freeze({ streamId, version, position: firstPosition + events.length - 1, events: Object.freeze(events) });
      }
      // The server refused. A publish retried after a lost acknowledgement may have been stored
      // by its first attempt: then the refusal is about our own message.
      if (outcome.ambiguous) {
        const ours = await this.reader.nextOnSubject(subject, base.seq + 1);
        if (ours !== undefined && ours.msgId === eventIds[0]) return this.fromStoredMessage(streamId, ours.seq);
      }
      let actual: Base;
      if (checkStream) {
        // Another append somewhere in the stream: a conflict only if it was on this stream. The
        // refusal may name a message still being replicated: read once it is stored.
        this.heads.observe(outcome.lastSeq, false);
        await this.reader.waitStored(outcome.lastSeq);
        actual = await this.reread(append, false);
        if (actual.seq === base.seq) {
          base = actual;
          continue;
        }
      } else {
        actual = await this.versionAtSequence(streamId, outcome.lastSeq);
      }
      // Same version, another last message: pruning replaced it with a marker. Not a conflict.
      if (actual.version === base.version && actual.seq !== base.seq) {
        base = actual;
        continue;
      }
      if (typeof expectedVersion === 'number' || expectedVersion === 'no-stream') {
        throw expectedVersionConflict(streamId, expectedVersion, actual.version);
      }
      if (expectedVersion === 'stream-exists' && actual.version === 0) throw expectedVersionConflict(streamId, expectedVersion, 0);
      // 'any' and 'stream-exists' hold at any version above 0: number the events anew and retry.
      base = actual;
      if (conflicts >= 3) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, conflicts * 2)));
    }
  }

  /**
   * Reads the stream's last message now; with `check`, applies the expected version to it. `head`
   * is a stream sequence at which that message was the stream's last: the stream head known
   * before the read (or the message itself, if later).
   */
  private async reread(append: PreparedAppend, check = true): Promise<Base> {
    const before = this.heads.streamHead;
    const last = await this.lastOf(append.streamId);
    const current = last === undefined ? { version: 0, seq: 0, head: before } : { version: last.version, seq: last.seq, head: Math.max(before, last.seq) };
    this.heads.observe(current.seq, false);
    if (check && append.expectedVersion !== 'any') checkExpectedVersion(append.streamId, append.expectedVersion, current.version);
    return current;
  }

  /** The version and last sequence an append starts from, checked against its expected version. */
  private async startingPoint(append: PreparedAppend): Promise<Base> {
    const { streamId, expectedVersion } = append;
    if (expectedVersion === 'no-stream' || expectedVersion === 0) return { version: 0, seq: 0 };
    const known = this.heads.get(streamId);
    const usable =
      known !== undefined &&
      (typeof expectedVersion === 'number' ? known.version === expectedVersion : known.version > 0);
    if (usable) {
      // In 'stream' mode a remembered message is a usable base only if it is the stream's head.
      return this.heads.base(known);
    }
    // A read here only picks the sequence to expect: the server still checks it at publish time.
    return this.reread(append);
  }

  private publish(
    subject: string,
    payload: string,
    msgId: string,
    expect: PublishExpectation,
    prevSeq: number,
    version: number,
    count: number,
  ): Promise<PublishOutcome> {
    return publishAppend(this.js, (what, attempt) => this.retry(what, attempt), this.publishTimeoutMs, {
      subject,
      payload,
      msgId,
      expect,
      prevSeq,
      version,
      count,
    });
  }


  private async versionAtSequence(streamId: string, seq: number): Promise<Base> {
    if (seq === 0) return { version: 0, seq: 0 };
    const head = await this.messageAt(seq);
    this.heads.remember(streamId, head.version, seq);
    return { version: head.version, seq };
  }

  /** A retried publish that the server had already stored: its result, as stored. */
  private async fromStoredMessage(streamId: string, seq: number): Promise<AppendResult> {
    const message = await this.reader.rawMessage(seq);
    const events = decodeEvents(seq, message.data);
    const version = events[events.length - 1]!.version;
    this.heads.remember(streamId, version, seq);
    return Object.freeze({ streamId, version, position: events[events.length - 1]!.position, events: Object.freeze(events) });
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

  private messageAt(seq: number): Promise<MessageHead> {
    return this.reader.headAt(seq);
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
