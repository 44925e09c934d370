import type { JetStreamClient } from '@nats-io/jetstream';
import { expectedVersionConflict } from '../errors.js';
import { newId } from '../events/ids.js';
import { frozenDate } from '../events/frozen-date.js';
import type { RecordedEvent } from '../events/types.js';
import type { AppendResult } from '../store/event-store.js';
import { checkExpectedVersion } from '../store/expected-version.js';
import { recordEvents, type PreparedAppend } from '../store/store-input.js';
import { decodeEvents, encodePayload, POSITION_STRIDE, type MessageHead } from './codec.js';
import type { Base, KnownHeads } from './known-heads.js';
import type { NatsExpectedSequence } from './options.js';
import { assertFitsOneMessage, publishAppend, type PublishExpectation, type PublishOutcome } from './publish.js';
import type { NatsReader } from './reads.js';

export interface AppenderContext {
  readonly js: JetStreamClient;
  readonly reader: NatsReader;
  readonly heads: KnownHeads;
  readonly expectedSequence: NatsExpectedSequence;
  readonly publishTimeoutMs: number;
  retry<T>(what: string, attempt: () => Promise<T>): Promise<T>;
  /** The largest message the stream accepts; fails when the stream is missing. */
  ready(): Promise<number>;
  lastOf(streamId: string): Promise<MessageHead | undefined>;
  subjectOf(streamId: string): string;
}

/**
 * Appends for `NatsEventStore`: one message per append, its expected version checked by the
 * server through the expected last (subject or stream) sequence, retried with the same message id.
 */
export class NatsAppender {
  /** 'stream' mode: this store's appends go one at a time (the server admits one per sequence anyway). */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: AppenderContext) {}

  async append(append: PreparedAppend): Promise<AppendResult> {
    const { streamId, expectedVersion } = append;
    if (append.events.length === 0) {
      const actual = (await this.ctx.lastOf(streamId))?.version ?? 0;
      checkExpectedVersion(streamId, expectedVersion, actual);
      return Object.freeze({ streamId, version: actual, position: 0, events: Object.freeze([]) as readonly RecordedEvent[] });
    }
    const limit = await this.ctx.ready();
    const subject = this.ctx.subjectOf(streamId);
    const eventIds = append.events.map(() => newId());
    if (this.ctx.expectedSequence === 'subject') return this.appendLoop(append, subject, eventIds, limit);
    const turn = this.serial.then(() => this.appendLoop(append, subject, eventIds, limit));
    this.serial = turn.catch(() => undefined);
    return turn;
  }

  private async appendLoop(append: PreparedAppend, subject: string, eventIds: string[], limit: number): Promise<AppendResult> {
    const { streamId, expectedVersion } = append;
    const { heads, reader } = this.ctx;
    // Where the stream ends now, as far as we know: version and the sequence of its last message.
    let base = await this.startingPoint(append);
    for (let conflicts = 0; ; conflicts++) {
      const recordedAt = Date.now();
      const payload = encodePayload(streamId, base.version + 1, recordedAt, append.events, eventIds);
      assertFitsOneMessage(streamId, subject, payload, limit);
      const version = base.version + append.events.length;
      // The sequence the server must find: the subject's last (exact on one server, and for a
      // new stream everywhere) or, in 'stream' mode, the whole stream's last.
      const checkStream = this.ctx.expectedSequence === 'stream' && base.seq > 0;
      if (checkStream && base.head === undefined) {
        base = await this.reread(append);
        continue;
      }
      const expect = checkStream ? { lastSequence: base.head! } : { lastSubjectSequence: base.seq };
      const outcome = await this.publish(subject, payload, eventIds[0]!, expect, base.seq, version, append.events.length);
      if ('ack' in outcome) {
        heads.observe(outcome.ack.seq, true);
        if (outcome.ack.duplicate) return this.fromStoredMessage(streamId, outcome.ack.seq);
        heads.remember(streamId, version, outcome.ack.seq);
        const firstPosition = outcome.ack.seq * POSITION_STRIDE;
        const events = recordEvents(append, base.version + 1, (i) => firstPosition + i, frozenDate(recordedAt), eventIds);
        return Object.freeze({ streamId, version, position: firstPosition + events.length - 1, events: Object.freeze(events) });
      }
      // The server refused. A publish retried after a lost acknowledgement may have been stored
      // by its first attempt: then the refusal is about our own message.
      if (outcome.ambiguous) {
        const ours = await reader.nextOnSubject(subject, base.seq + 1);
        if (ours !== undefined && ours.msgId === eventIds[0]) return this.fromStoredMessage(streamId, ours.seq);
      }
      let actual: Base;
      if (checkStream) {
        // Another append somewhere in the stream: a conflict only if it was on this stream. The
        // refusal may name a message still being replicated: read once it is stored.
        heads.observe(outcome.lastSeq, false);
        await reader.waitStored(outcome.lastSeq);
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
    const before = this.ctx.heads.streamHead;
    const last = await this.ctx.lastOf(append.streamId);
    const current = last === undefined ? { version: 0, seq: 0, head: before } : { version: last.version, seq: last.seq, head: Math.max(before, last.seq) };
    this.ctx.heads.observe(current.seq, false);
    if (check && append.expectedVersion !== 'any') checkExpectedVersion(append.streamId, append.expectedVersion, current.version);
    return current;
  }

  /** The version and last sequence an append starts from, checked against its expected version. */
  private async startingPoint(append: PreparedAppend): Promise<Base> {
    const { streamId, expectedVersion } = append;
    if (expectedVersion === 'no-stream' || expectedVersion === 0) return { version: 0, seq: 0 };
    const known = this.ctx.heads.get(streamId);
    const usable =
      known !== undefined &&
      (typeof expectedVersion === 'number' ? known.version === expectedVersion : known.version > 0);
    if (usable) {
      // In 'stream' mode a remembered message is a usable base only if it is the stream's head.
      return this.ctx.heads.base(known);
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
    return publishAppend(this.ctx.js, (what, attempt) => this.ctx.retry(what, attempt), this.ctx.publishTimeoutMs, {
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
    const head = await this.ctx.reader.headAt(seq);
    this.ctx.heads.remember(streamId, head.version, seq);
    return { version: head.version, seq };
  }

  /** A retried publish that the server had already stored: its result, as stored. */
  private async fromStoredMessage(streamId: string, seq: number): Promise<AppendResult> {
    const message = await this.ctx.reader.rawMessage(seq);
    const events = decodeEvents(seq, message.data);
    const version = events[events.length - 1]!.version;
    this.ctx.heads.remember(streamId, version, seq);
    return Object.freeze({ streamId, version, position: events[events.length - 1]!.position, events: Object.freeze(events) });
  }
}
