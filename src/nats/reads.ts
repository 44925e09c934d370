import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerMessages, type JetStreamClient,
  type JetStreamManager, type JsMsg, type StoredMsg } from '@nats-io/jetstream';
import { StoreUnavailableError, StreamNotFoundError } from '../errors.js';
import type { Logger } from '../logging.js';
import { describe, isTransient } from './transient.js';
import type { RecordedEvent } from '../events/types.js';
import type { ReadAllOptions, ReadStreamOptions } from '../store/event-store.js';
import { matchesFilter } from '../store/read-filter.js';
import { resolveLogRange, resolveStreamRange } from '../store/store-input.js';
import { NatsStreamMissingError } from './errors.js';
import { decodeEvents, firstVersionOf, headOf, POSITION_STRIDE, type MessageHead } from './codec.js';
import { rewriteSubjectOf, type RawMessage } from './rewrites.js';

export interface ReaderContext {
  readonly js: JetStreamClient;
  jsm(): Promise<JetStreamManager>;
  readonly stream: string;
  readonly eventSubjects: string;
  readonly pageSize: number;
  readonly logger: Logger;
  retry<T>(what: string, attempt: () => Promise<T>): Promise<T>;
  assertOpen(): void;
  lastOf(streamId: string): Promise<MessageHead | undefined>;
  subjectOf(streamId: string): string;
  headOf(seq: number): Promise<MessageHead>;
}

/** Backwards hops a forward read takes to find its first message before it reads the subject from the start. */
const SEEK_HOPS = 8;

/**
 * Reads for `NatsEventStore`. Single messages come from the stream's message API (last message of
 * a subject, message at a sequence); runs of messages from an ordered consumer filtered to one
 * subject (one stream) or to all event subjects (the log), read up to the last message that
 * existed when the read began.
 */
export class NatsReader {
  /** Whether the stream can hold erased messages (pruning); a `false` is looked up again after a while. */
  private prunableCheck: { readonly at: number; readonly answer: Promise<boolean> } | undefined;

  constructor(private readonly ctx: ReaderContext) {}

  async lastOnSubject(subject: string): Promise<MessageHead | undefined> {
    const message = await this.get({ last_by_subj: subject });
    return message === null ? undefined : headOf(message.seq, message.header);
  }

  /** The first message on `subject` at or after `seq`, with its `Nats-Msg-Id`. */
  async nextOnSubject(subject: string, seq: number): Promise<{ seq: number; msgId: string | undefined } | undefined> {
    const message = await this.get({ next_by_subj: subject, seq });
    return message === null ? undefined : { seq: message.seq, msgId: message.header?.get('Nats-Msg-Id') || undefined };
  }

  /** Resolves once the message at `seq` can be read (a refusal may name one still being replicated). */
  async waitStored(seq: number): Promise<void> {
    for (let attempt = 0; (await this.get({ seq })) === null; attempt++) {
      // Pruning may have erased it since: a later message shows the stream is past it.
      if ((await this.prunable()) && (await this.get({ next_by_subj: '>', seq })) !== null) return;
      if (attempt > 200) throw new Error(`JetStream message ${seq} of stream '${this.ctx.stream}' did not appear`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, 2 ** attempt)));
    }
  }

  async headAt(seq: number): Promise<MessageHead> {
    const message = await this.rawMessage(seq);
    return headOf(seq, message.header);
  }

  /** The message at `seq`, or the rewrite of an erased (pruned) one. */
  async rawMessage(seq: number): Promise<RawMessage> {
    const message = (await this.get({ seq })) ?? (await this.rewriteOf(seq));
    if (message === null || message === undefined) throw new Error(`JetStream message ${seq} of stream '${this.ctx.stream}' is missing`);
    return message;
  }

  /** The rewrite of the erased message at `seq`, if pruning erased it. */
  async rewriteOf(seq: number): Promise<RawMessage | undefined> {
    if (!(await this.prunable())) return undefined;
    const rewrite = await this.get({ last_by_subj: rewriteSubjectOf(this.ctx.eventSubjects, seq) });
    return rewrite === null ? undefined : { seq, header: rewrite.header, data: rewrite.data };
  }

  /** The rewrites of the erased messages of one stream after `after` up to `upTo`, oldest first. */
  private async rewritesBetween(after: number, upTo: number): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    for (let seq = upTo; seq > after; ) {
      const rewrite = await this.rewriteOf(seq);
      if (rewrite === undefined) throw new Error(`JetStream message ${seq} of stream '${this.ctx.stream}' is missing and was not pruned`);
      out.unshift(rewrite);
      seq = headOf(seq, rewrite.header).prev;
    }
    return out;
  }

  private prunable(): Promise<boolean> {
    const check = this.prunableCheck;
    if (check !== undefined && Date.now() - check.at < 10_000) return check.answer;
    const answer = this.ctx
      .jsm()
      .then((jsm) => this.ctx.retry('look up the JetStream stream', () => jsm.streams.info(this.ctx.stream)))
      .then((info) => info.config.deny_delete === false);
    this.prunableCheck = { at: Date.now(), answer };
    // Once a stream allows deletes it is treated so for good; failures and `false` are asked again later.
    answer.then(
      (yes) => {
        if (yes) this.prunableCheck = { at: Number.POSITIVE_INFINITY, answer };
      },
      () => {
        this.prunableCheck = undefined;
      },
    );
    return answer;
  }

  /** The log's last event message, or undefined when there is none. */
  async lastEventMessage(): Promise<MessageHead | undefined> {
    return this.lastOnSubject(this.ctx.eventSubjects);
  }

  private async get(query: { seq: number } | { last_by_subj: string } | { next_by_subj: string; seq: number }): Promise<StoredMsg | null> {
    try {
      return await this.ctx.retry('read from the JetStream stream', () =>
        this.ctx.jsm().then((jsm) => jsm.streams.getMessage(this.ctx.stream, query)).catch(nullOnNotFound),
      );
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) throw new NatsStreamMissingError(this.ctx.stream);
      throw error;
    }
  }

  async *streamPages(streamId: string, options: ReadStreamOptions | undefined): AsyncGenerator<readonly RecordedEvent[]> {
    this.ctx.assertOpen();
    const range = resolveStreamRange(streamId, options);
    const subject = this.ctx.subjectOf(streamId);
    const last = await this.ctx.lastOf(streamId);
    if (last === undefined) throw new StreamNotFoundError(streamId);
    const high = Math.min(range.high, last.version);
    if (range.low > high || range.limit === 0) return;
    let remaining = range.limit;
    if (range.backwards) {
      // Walk the stream's messages newest first through their Eventfold-Prev links.
      let seq = last.seq;
      while (seq > 0 && remaining > 0) {
        this.ctx.assertOpen();
        const message = await this.rawMessage(seq);
        const head = headOf(seq, message.header);
        if (firstVersionOf(head) <= high) {
          const page: RecordedEvent[] = [];
          const events = decodeEvents(seq, message.data);
          for (let i = events.length - 1; i >= 0 && remaining > 0; i--) {
            const event = events[i]!;
            if (event.version > high || event.version < range.low) continue;
            page.push(event);
            remaining--;
          }
          if (page.length > 0) yield page;
        }
        if (firstVersionOf(head) <= range.low) break;
        seq = head.prev;
      }
      return;
    }
    // Forwards: the last few messages hold the range more often than not (a tail after a snapshot).
    const chain: RawMessage[] = [];
    let seq = last.seq;
    // From the first version, only a stream of one message is worth reading message by message.
    const hops = range.low <= 1 && firstVersionOf(last) > 1 ? 0 : SEEK_HOPS;
    for (let hop = 0; hop < hops && seq > 0; hop++) {
      const message = await this.rawMessage(seq);
      chain.unshift(message);
      const head = headOf(seq, message.header);
      if (firstVersionOf(head) <= range.low) break;
      seq = head.prev;
    }
    const first = chain[0];
    const firstHead = first === undefined ? undefined : headOf(first.seq, first.header);
    const startsInChain = firstHead !== undefined && (firstVersionOf(firstHead) <= range.low || firstHead.prev === 0);
    if (startsInChain) {
      for (const message of chain) {
        this.ctx.assertOpen();
        const page = clip(decodeEvents(message.seq, message.data), range.low, high, remaining);
        remaining -= page.length;
        if (page.length > 0) yield page;
        if (remaining <= 0) return;
      }
      return;
    }
    // The whole range from the start, the common rehydration: no per-message header checks unless
    // the versions jump, where pruning erased messages (their rewrites fill the gap).
    const everything = range.low <= 1 && high >= last.version && remaining >= last.version;
    let prevSeq = 0;
    let nextVersion = 1;
    let page: RecordedEvent[] = [];
    const add = (message: RawMessage, head: MessageHead | undefined, decoded: RecordedEvent[] | undefined): void => {
      if (everything) {
        const events = decoded ?? decodeEvents(message.seq, message.data);
        // A page of one message is its decoded array (ours, fresh): no copy.
        if (page.length === 0) page = events;
        else for (const event of events) page.push(event);
        return;
      }
      if (head!.version < range.low || firstVersionOf(head!) > high) return;
      for (const event of clip(decodeEvents(message.seq, message.data), range.low, high, remaining)) {
        page.push(event);
        remaining--;
      }
    };
    const fill = async (upTo: number): Promise<void> => {
      for (const rewrite of await this.rewritesBetween(prevSeq, upTo)) add(rewrite, headOf(rewrite.seq, rewrite.header), undefined);
      prevSeq = upTo;
    };
    for await (const messages of this.orderedRun(subject, 1, last.seq)) {
      page = [];
      for (const stored of messages) {
        const message: RawMessage = { seq: stored.seq, header: stored.headers, data: stored.data };
        const events = everything ? decodeEvents(message.seq, message.data) : undefined;
        let head: MessageHead | undefined;
        if (events === undefined || events.length === 0 || events[0]!.version !== nextVersion) {
          head = headOf(message.seq, message.header);
          if (head.prev !== prevSeq) await fill(head.prev);
        }
        add(message, head, events);
        prevSeq = message.seq;
        nextVersion = head !== undefined ? head.version + 1 : events![events!.length - 1]!.version + 1;
      }
      if (everything) remaining -= page.length;
      if (page.length > 0) yield page;
      if (remaining <= 0) return;
    }
    if (prevSeq < last.seq) {
      // The stream's last message was erased while this read ran (a marker now follows it).
      page = [];
      await fill(last.seq);
      if (page.length > 0) yield page;
    }
  }

  async *logPages(options: ReadAllOptions | undefined): AsyncGenerator<readonly RecordedEvent[]> {
    this.ctx.assertOpen();
    const { fromPosition, limit, filter } = resolveLogRange(options);
    if (limit === 0) return;
    const last = await this.lastEventMessage();
    if (last === undefined) return;
    const startSeq = Math.max(1, Math.floor(fromPosition / POSITION_STRIDE));
    if (startSeq > last.seq) return;
    let remaining = limit;
    // Sequences the event subjects skip: other subjects (rewrites), or messages pruning erased.
    let expected = startSeq;
    let page: RecordedEvent[] = [];
    const add = (events: readonly RecordedEvent[]): void => {
      for (const event of events) {
        if (event.position < fromPosition) continue;
        // Filters are applied here: a category is part of a subject token, not a whole token.
        if (filter !== undefined && !matchesFilter(event, filter)) continue;
        if (remaining <= 0) break;
        page.push(event);
        remaining--;
      }
    };
    /** The rewrites of erased messages in the sequences the run skipped, up to `before`. */
    const fill = async (before: number): Promise<void> => {
      if (before > expected && remaining > 0 && (await this.prunable())) {
        for (let seq = expected; seq < before; seq++) {
          const rewrite = await this.rewriteOf(seq);
          if (rewrite !== undefined) add(decodeEvents(seq, rewrite.data));
        }
      }
      expected = Math.max(expected, before + 1);
    };
    for await (const messages of this.orderedRun(this.ctx.eventSubjects, startSeq, last.seq)) {
      page = [];
      for (const message of messages) {
        if (message.seq > expected) await fill(message.seq);
        else expected = message.seq + 1;
        add(decodeEvents(message.seq, message.data));
      }
      if (page.length > 0) yield page;
      if (remaining <= 0) return;
    }
    // The log's last message was erased while this read ran (a marker now follows it).
    page = [];
    await fill(last.seq + 1);
    if (page.length > 0) yield page;
  }

  /**
   * Messages on `filter` from `startSeq` through `endSeq` (which must exist), in pages, from an
   * ordered consumer (which recreates itself after a gap or a lost consumer). The ephemeral
   * consumer is removed when the run ends.
   */
  private async *orderedRun(filter: string, startSeq: number, endSeq: number): AsyncGenerator<JsMsg[]> {
    let nextSeq = startSeq;
    let setbacks = 0;
    while (nextSeq <= endSeq) {
      this.ctx.assertOpen();
      const consumer = await this.ctx.retry('open a JetStream reader', () =>
        this.ctx.js.consumers.get(this.ctx.stream, {
          filter_subjects: filter,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: nextSeq,
        }),
      );
      let batch: ConsumerMessages | undefined;
      try {
        while (nextSeq <= endSeq) {
          this.ctx.assertOpen();
          const page: JsMsg[] = [];
          let done = false;
          try {
            batch = await consumer.fetch({ max_messages: this.ctx.pageSize, expires: 5_000 });
            for await (const message of batch) {
              if (message.seq > endSeq) {
                done = true;
                break;
              }
              page.push(message);
              if (message.seq === endSeq || message.info.pending === 0) {
                done = true;
                break;
              }
            }
          } catch (error) {
            // A lost connection or leader mid-read: start again after the last message handed out.
            if (!isTransient(error) && !(error instanceof Error && /heartbeat|consumer deleted|reset/i.test(error.message))) throw error;
            this.ctx.logger.warn('NATS: a read was interrupted; resuming', { error: describe(error), nextSeq });
            page.length = 0;
            done = false;
          } finally {
            batch?.stop();
            batch = undefined;
          }
          if (page.length > 0) {
            setbacks = 0;
            yield page;
            nextSeq = page[page.length - 1]!.seq + 1;
          }
          if (done) return;
          if (page.length === 0) {
            // Nothing came in time though the messages exist: a fresh consumer, a bounded number of times.
            if (++setbacks > 12) {
              throw new StoreUnavailableError(
                `Could not read JetStream stream '${this.ctx.stream}' from sequence ${nextSeq}: no messages arrived. ` +
                  `Check that the servers are up and the stream has a leader, then retry.`,
              );
            }
            await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** setbacks) * (0.5 + Math.random() / 2)));
            break;
          }
        }
      } finally {
        batch?.stop();
        await consumer.delete().catch(() => false);
      }
    }
  }

}

function clip(events: RecordedEvent[], low: number, high: number, remaining: number): RecordedEvent[] {
  if (events.length === 0) return events;
  if (events[0]!.version >= low && events[events.length - 1]!.version <= high && events.length <= remaining) return events;
  const out: RecordedEvent[] = [];
  for (const event of events) {
    if (event.version < low || event.version > high) continue;
    if (out.length >= remaining) break;
    out.push(event);
  }
  return out;
}

function nullOnNotFound(error: unknown): null {
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return null;
  throw error;
}
