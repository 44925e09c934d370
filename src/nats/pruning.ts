import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { CapabilityNotSupportedError, InvalidArgumentError, StoreClosedError, StoreUnavailableError, StreamNotFoundError } from '../errors.js';
import { assertValidStreamId } from '../events/validation.js';
import { PRUNED_EVENT, STREAM_DELETED, type StreamPruning } from '../evolution/lifecycle.js';
import { silentLogger, type Logger } from '../logging.js';
import { COUNT_HEADER, headOf, lastPositionOf, LOG_HEAD_HEADER, PREV_HEADER, VERSION_HEADER, type MessageHead } from './codec.js';
import type { NatsEventStore } from './nats-event-store.js';
import { NatsStreamMissingError } from './errors.js';
import { assertValidNatsName, encodeStreamToken } from './subjects.js';
import { rewriteSubjectOf } from './rewrites.js';
import { retryTransient } from './transient.js';

export interface NatsStreamPruningOptions {
  /** The `NatsSnapshotStore` bucket: `purgeDeletedStream` removes the stream's snapshots from it. */
  readonly snapshotBucket?: string;
  readonly logger?: Logger;
}

/** One message of a stream as pruning finds it: stored, or already rewritten (then `rewriteSeq`). */
interface Entry {
  readonly head: MessageHead;
  readonly data: Uint8Array;
  readonly rewriteSeq: number | undefined;
}

type Payload = { s: string; v: number; t: number; e: [string, string, unknown, unknown][] };

const WRONG_LAST_SEQUENCE = 10071;
const MARKER_ATTEMPTS = 50;
const decoder = new TextDecoder();

/**
 * `StreamPruning` for `NatsEventStore` (see `StreamPruning` for what it promises). JetStream
 * messages cannot be changed, so a message with events to prune is rewritten and erased:
 *
 * 1. its rewrite (same headers; pruned events as `$Pruned` placeholders with their ids, kept
 *    events as they were) is published on `<prefix>.r.<sequence>`;
 * 2. the message is deleted with `erase`, which overwrites its bytes in the server's store;
 * 3. the store's readers, meeting the erased sequence, read the rewrite in its place, at the
 *    original sequence: versions stay contiguous, positions stay where they were.
 *
 * A stream's last message is never left erased (appends check the subject's last sequence): when
 * it must be rewritten, a marker with no events is appended to the stream first (same version),
 * and it becomes the stream's last message. The stream must be created with `allowPruning: true`
 * (JetStream cannot lift `deny_delete` later). `purgeDeletedStream` also erases the stream's
 * snapshots from `snapshotBucket` (the `NatsSnapshotStore` bucket). Run one pruning of a stream at
 * a time.
 */
export class NatsStreamPruning implements StreamPruning {
  private readonly connection: NatsConnection;
  private readonly stream: string;
  private readonly eventSubjects: string;
  private readonly rewriteSubjects: string;
  private readonly js: JetStreamClient;
  private readonly logger: Logger;
  private readonly snapshotBucket: string | undefined;
  private manager: JetStreamManager | undefined;
  private checked = false;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: NatsEventStore,
    options: NatsStreamPruningOptions = {},
  ) {
    this.connection = store.connection;
    this.stream = store.options.stream;
    this.eventSubjects = store.options.eventSubjects;
    this.rewriteSubjects = store.options.rewriteSubjects;
    if (options.snapshotBucket !== undefined) assertValidNatsName('snapshotBucket', options.snapshotBucket);
    this.snapshotBucket = options.snapshotBucket;
    this.logger = options.logger ?? silentLogger;
    this.js = jetstream(this.connection);
  }

  async purgeDeletedStream(streamId: string): Promise<{ readonly removedEvents: number }> {
    assertValidStreamId(streamId);
    return this.serially(async () => {
      const chain = await this.chainOf(streamId);
      const last = [...chain].reverse().find((entry) => entry.head.count > 0)!;
      const payload = parse(last.data);
      if (payload.e[payload.e.length - 1]?.[1] !== STREAM_DELETED) {
        throw new InvalidArgumentError(`Stream '${streamId}' is not deleted: tombstone it before purging its events.`);
      }
      const removed = await this.pruneBelow(streamId, chain, last.head.version);
      await this.removeSnapshots(streamId);
      return { removedEvents: removed };
    });
  }

  async truncateBefore(streamId: string, version: number): Promise<{ readonly removedEvents: number }> {
    assertValidStreamId(streamId);
    if (!Number.isSafeInteger(version) || version < 1) throw new InvalidArgumentError(`truncateBefore takes a version >= 1, got ${String(version)}.`);
    return this.serially(async () => {
      const chain = await this.chainOf(streamId);
      const at = chain[chain.length - 1]!.head.version;
      if (version > at) throw new InvalidArgumentError(`Stream '${streamId}' is at version ${at}: truncateBefore(${version}) would remove all of it.`);
      return { removedEvents: await this.pruneBelow(streamId, chain, version) };
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    if (this.store.isClosed) throw new StoreClosedError('NATS event store');
    const next = this.turn.then(async () => {
      await this.assertPrunable();
      return work();
    });
    this.turn = next.catch(() => undefined);
    return next;
  }

  /** Every message of the stream, oldest first, following the `Eventfold-Prev` links from its last. */
  private async chainOf(streamId: string): Promise<Entry[]> {
    const last = await this.get({ last_by_subj: this.store.subjectOf(streamId) });
    if (last === null) throw new StreamNotFoundError(streamId);
    const chain: Entry[] = [{ head: headOf(last.seq, last.header), data: last.data, rewriteSeq: undefined }];
    for (let seq = chain[0]!.head.prev; seq > 0; ) {
      const entry = await this.entryAt(seq);
      chain.unshift(entry);
      seq = entry.head.prev;
    }
    return chain;
  }

  private async entryAt(seq: number): Promise<Entry> {
    const stored = await this.get({ seq });
    if (stored !== null) return { head: headOf(seq, stored.header), data: stored.data, rewriteSeq: undefined };
    const rewrite = await this.get({ last_by_subj: rewriteSubjectOf(this.eventSubjects, seq) });
    if (rewrite === null) throw new Error(`JetStream message ${seq} of stream '${this.stream}' is missing and was not pruned`);
    return { head: headOf(seq, rewrite.header), data: rewrite.data, rewriteSeq: rewrite.seq };
  }

  private async pruneBelow(streamId: string, chain: readonly Entry[], below: number): Promise<number> {
    let removed = 0;
    for (const entry of chain) {
      const { head } = entry;
      if (head.count === 0 || head.version - head.count + 1 >= below) continue;
      const payload = parse(entry.data);
      let changed = 0;
      payload.e = payload.e.map((event, i) => {
        if (payload.v + i >= below || event[1] === PRUNED_EVENT) return event;
        changed++;
        return [event[0], PRUNED_EVENT, null, {}];
      });
      if (changed === 0) continue;
      // The rewrite first: a reader that finds the message gone finds its rewrite.
      const subject = rewriteSubjectOf(this.eventSubjects, head.seq);
      const rewrite = await this.publish(subject, JSON.stringify(payload), head, {});
      if (entry.rewriteSeq === undefined) {
        await this.keepLastMessage(streamId, head);
        await this.erase(head.seq);
      }
      // Earlier rewrites (an earlier pruning, a retried publish, a run interrupted and run again)
      // hold events this one prunes.
      for (let from = head.seq; ; ) {
        const older = await this.get({ next_by_subj: subject, seq: from });
        if (older === null || older.seq >= rewrite) break;
        await this.erase(older.seq);
        from = older.seq + 1;
      }
      removed += changed;
    }
    return removed;
  }

  /**
   * When `head` is the stream's last message, appends a marker (no events, same version) after
   * it, so the stream keeps a last message for appends to check. The marker records the log's
   * last position, which `headPosition` reports while the marker ends the log.
   */
  private async keepLastMessage(streamId: string, head: MessageHead): Promise<void> {
    const subject = this.store.subjectOf(streamId);
    for (let attempt = 0; attempt < MARKER_ATTEMPTS; attempt++) {
      const jsm = await this.jsm();
      const info = await this.retry('look up the JetStream stream', () => jsm.streams.info(this.stream));
      const last = await this.get({ last_by_subj: subject });
      if (last === null || last.seq !== head.seq) return;
      const logLast = await this.get({ last_by_subj: this.eventSubjects });
      const logHead = logLast === null ? 0 : lastPositionOf(headOf(logLast.seq, logLast.header));
      const marker = JSON.stringify({ s: streamId, v: head.version + 1, t: Date.now(), e: [] });
      try {
        // Both checks: nothing appended since the log head was read, and the message is still last.
        await this.publish(subject, marker, { ...head, count: 0, prev: head.seq }, { lastSequence: info.state.last_seq, lastSubjectSequence: head.seq }, logHead);
        return;
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
      }
    }
    throw new StoreUnavailableError(
      `Could not mark the end of stream '${streamId}' before pruning its last message: appends kept arriving. Nothing was erased; retry.`,
    );
  }

  private async publish(
    subject: string,
    payload: string,
    head: MessageHead,
    expect: { lastSequence?: number; lastSubjectSequence?: number },
    logHead?: number,
  ): Promise<number> {
    const h = natsHeaders();
    h.set(VERSION_HEADER, String(head.version));
    h.set(COUNT_HEADER, String(head.count));
    h.set(PREV_HEADER, String(head.prev));
    if (logHead !== undefined) h.set(LOG_HEAD_HEADER, String(logHead));
    const ack = await this.retry(`publish to '${subject}'`, () => this.js.publish(subject, payload, { headers: h, expect }));
    return ack.seq;
  }

  /** Deletes the message and overwrites its bytes in the server's store. */
  private async erase(seq: number, stream = this.stream): Promise<void> {
    const jsm = await this.jsm();
    await this.retry(`erase message ${seq}`, () =>
      jsm.streams.deleteMessage(stream, seq, true).catch((error: unknown) => {
        // Already gone (a pruning run that stopped half-way, run again).
        if (error instanceof JetStreamApiError && /no message found|not found/i.test(error.message)) return true;
        throw error;
      }),
    );
  }

  /** Erases the stream's snapshot values from the KV bucket's stream (every revision), keys and all. */
  private async removeSnapshots(streamId: string): Promise<void> {
    if (this.snapshotBucket === undefined) return;
    const kv = await new Kvm(this.connection).open(this.snapshotBucket);
    const token = encodeStreamToken(streamId);
    const keys: string[] = [];
    for await (const key of await kv.keys(`${token}.*`)) keys.push(key);
    const kvStream = `KV_${this.snapshotBucket}`;
    for (const key of keys) {
      for (;;) {
        const stored = await this.get({ last_by_subj: `$KV.${this.snapshotBucket}.${key}` }, kvStream);
        if (stored === null) break;
        await this.erase(stored.seq, kvStream);
      }
    }
  }

  private async assertPrunable(): Promise<void> {
    if (this.checked) return;
    const jsm = await this.jsm();
    const info = await this.retry('look up the JetStream stream', () =>
      jsm.streams.info(this.stream).catch((error: unknown) => {
        if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) throw new NatsStreamMissingError(this.stream);
        throw error;
      }),
    );
    if (info.config.deny_delete !== false || !(info.config.subjects ?? []).includes(this.rewriteSubjects)) {
      throw new CapabilityNotSupportedError(
        'streamPruning',
        `JetStream stream '${this.stream}' was not created for pruning (it denies deletes, or lacks the subjects ` +
          `'${this.rewriteSubjects}'). Create the store with allowPruning: true on a new stream (JetStream cannot lift ` +
          `deny_delete), and copy the events over. Nothing was changed.`,
      );
    }
    this.checked = true;
  }

  private async get(query: { seq: number } | { last_by_subj: string } | { next_by_subj: string; seq: number }, stream = this.stream): Promise<StoredMsg | null> {
    const jsm = await this.jsm();
    return this.retry('read from the JetStream stream', () =>
      jsm.streams.getMessage(stream, query).catch((error: unknown) => {
        if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return null;
        throw error;
      }),
    );
  }

  private async jsm(): Promise<JetStreamManager> {
    this.manager ??= await jetstreamManager(this.connection, { checkAPI: false });
    return this.manager;
  }

  private retry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retryTransient(what, 30_000, this.logger, attempt, () => this.store.isClosed, () => new StoreClosedError('NATS event store'));
  }
}

function parse(data: Uint8Array): Payload {
  return JSON.parse(decoder.decode(data)) as Payload;
}
