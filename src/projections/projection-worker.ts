import type { ConsumerSession, ConsumerWorker } from '../consumers/consumer-loop.js';
import { backoffDelay, type RetryPolicy } from '../consumers/retry.js';
import { EventfoldError, InvalidArgumentError } from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventStore, ReadAllFilter } from '../store/event-store.js';
import { errorText, newDeadLetter, type DeadLetterWrite, type PoisonEventPolicy } from './dead-letters.js';
import { ProjectionFailedError, ProjectionHandlerError } from './errors.js';
import { ProgressMeter, type ProjectionProgress } from './progress.js';
import { applyEventsAsync, applyEventsSync, runHookSync, type MaybePromise, type Projection } from './projection.js';
import type { Checkpoint, ProjectionTarget } from './target.js';
import type { CatchUpProgress } from './waiters.js';
import type { ProjectionBatch } from './runner-types.js';

export interface ProjectionWorkerOptions<E extends AnyEvent, Ctx> {
  readonly store: EventStore;
  readonly projection: Projection<E, Ctx>;
  readonly target: ProjectionTarget<Ctx>;
  readonly batchSize: number;
  /** Only these events are read (pushed down to the store); the checkpoint still moves to the head. */
  readonly filter: ReadAllFilter | undefined;
  readonly pollIntervalMs: number;
  readonly progressIntervalMs: number;
  readonly retry: RetryPolicy;
  readonly poisonEvents: PoisonEventPolicy;
  readonly isTransient: (error: unknown) => boolean;
  readonly onProgress: ((progress: ProjectionProgress) => void) | undefined;
  readonly onBatch: ((batch: ProjectionBatch) => void) | undefined;
  /** The checkpoint moved (or a rebuild finished): settle waiters. */
  readonly onAdvance: () => void;
}

type RebuildReason = 'requested' | 'version-changed';

/** Dead letters the runner re-applies per turn at most. */
const RETRIES_PER_TURN = 100;

/**
 * What a projection runner does while it holds the lock: read the checkpoint, catch up in
 * batches, tail the log, rebuild on request or version change, park poison events, re-apply
 * parked events an operator asked to retry. Transient faults are thrown to the consumer loop,
 * which retries the whole session from the checkpoint.
 */
export class ProjectionWorker<E extends AnyEvent, Ctx> implements ConsumerWorker {
  current: Checkpoint | undefined;
  headPosition: number | undefined;
  parked = 0;
  rebuildsRequested = 0;
  rebuildsDone = 0;
  private rebuildReason: RebuildReason | undefined;
  private rebuilding: { generation: number; meter: ProgressMeter } | undefined;
  private everLive = false;
  private session!: ConsumerSession;

  constructor(private readonly o: ProjectionWorkerOptions<E, Ctx>) {}

  private get name(): string {
    return this.o.projection.name;
  }

  get progress(): CatchUpProgress {
    const current = this.current;
    return {
      position: current?.position ?? 0,
      rebuildsDone: this.rebuildsDone,
      blocked:
        this.rebuildReason !== undefined ||
        this.rebuilding !== undefined ||
        (current !== undefined && current.version !== this.o.projection.version),
    };
  }

  requestRebuild(): number {
    this.rebuildReason = 'requested';
    return ++this.rebuildsRequested;
  }

  async prepare(): Promise<void> {
    await this.o.target.prepare();
  }

  async run(session: ConsumerSession): Promise<void> {
    this.session = session;
    try {
      await this.process();
    } catch (error) {
      // A fault the loop will not retry ends the runner: give raw driver errors a typed wrapper.
      if (this.o.isTransient(error) || error instanceof EventfoldError) throw error;
      throw new ProjectionFailedError(this.name, this.current?.position ?? 0, 1, error);
    }
  }

  private async process(): Promise<void> {
    const { projection, target } = this.o;
    const setup = projection.setup;
    if (setup !== undefined) await target.commit(this.name, undefined, undefined, (ctx) => this.runHook('setup', setup, ctx));
    this.current = await target.readCheckpoint(this.name);
    if (this.current !== undefined && this.current.version !== projection.version) this.rebuildReason ??= 'version-changed';
    if (target.deadLetters !== undefined) this.parked = await target.deadLetters.count(this.name);
    this.session.setState(this.rebuildReason !== undefined || this.rebuilding !== undefined ? 'rebuilding' : 'catching-up');
    while (!this.session.interrupted) {
      if (this.rebuildReason !== undefined) await this.reset(this.rebuildReason);
      const head = await this.o.store.headPosition();
      this.headPosition = Math.max(head, this.headPosition ?? 0);
      if (head > (this.current?.position ?? 0)) {
        await this.catchUp(head);
        continue;
      }
      this.finishRebuild();
      if (this.parked > 0) await this.retryParked();
      this.everLive = true;
      this.session.progressed();
      this.session.setState('live');
      this.o.onAdvance();
      await this.session.sleep(this.o.pollIntervalMs);
    }
  }

  private async reset(reason: RebuildReason): Promise<void> {
    const reset = this.o.projection.reset;
    if (reset === undefined) throw missingReset(this.name);
    const generation = this.rebuildsRequested;
    this.rebuildReason = undefined;
    this.session.setState('rebuilding');
    const head = await this.o.store.headPosition();
    const next: Checkpoint = { position: 0, version: this.o.projection.version };
    try {
      const clear: DeadLetterWrite | undefined = this.o.target.deadLetters === undefined ? undefined : { kind: 'clear' };
      await this.o.target.commit(this.name, this.current, next, (ctx) => this.runHook('reset', reset, ctx), clear);
    } catch (error) {
      // Not done: ask again, so a retried session resets before anything else.
      this.rebuildReason = reason;
      throw error;
    }
    this.current = next;
    this.parked = 0;
    const meter = new ProgressMeter(this.name, 'rebuild', reason, 0, head, this.o.progressIntervalMs, this.o.onProgress);
    this.rebuilding = { generation, meter };
    meter.record(0, 0);
  }

  private finishRebuild(): void {
    if (this.rebuilding === undefined) return;
    this.rebuilding.meter.finish(this.current?.position ?? 0);
    this.rebuildsDone = Math.max(this.rebuildsDone, this.rebuilding.generation);
    this.rebuilding = undefined;
  }

  private async catchUp(head: number): Promise<void> {
    const from = this.current?.position ?? 0;
    const o = this.o;
    const meter =
      this.rebuilding?.meter ??
      (this.everLive ? undefined : new ProgressMeter(this.name, 'catch-up', undefined, from, head, o.progressIntervalMs, o.onProgress));
    if (this.rebuilding === undefined && !this.everLive) this.session.setState('catching-up');
    else if (this.rebuilding !== undefined) this.session.setState('rebuilding');
    // Batches of exactly `batchSize` events (the last one shorter), whatever the store's page size.
    let buffer: RecordedEvent[] = [];
    const flush = async (events: readonly RecordedEvent[]): Promise<boolean> => {
      const before = this.current?.position ?? 0;
      const startedAt = Date.now();
      const started = performance.now();
      await this.applyBatch(events);
      const after = this.current?.position ?? 0;
      let applied = 0;
      for (const e of events) if (e.position > before && e.position <= after) applied++;
      try {
        o.onBatch?.({
          projection: this.name,
          fromPosition: before,
          toPosition: after,
          events: applied,
          startedAt,
          durationMs: performance.now() - started,
          rebuilding: this.rebuilding !== undefined,
        });
      } catch {
        // A throwing listener must not change what the runner does (its batch is committed).
      }
      meter?.record(applied, after);
      // Waiters for this phase's goal are settled after its last progress report (below).
      if (after < head) this.o.onAdvance();
      await this.session.yieldToEventLoop();
      return this.session.interrupted || this.rebuildReason !== undefined;
    };
    const read = o.filter === undefined ? { fromPosition: from + 1 } : { fromPosition: from + 1, filter: o.filter };
    for await (const page of o.store.readAll(read).pages()) {
      let offset = 0;
      if (buffer.length > 0) {
        offset = Math.min(page.length, o.batchSize - buffer.length);
        for (let i = 0; i < offset; i++) buffer.push(page[i]!);
        if (buffer.length < o.batchSize) continue;
        const full = buffer;
        buffer = [];
        if (await flush(full)) return;
      }
      while (page.length - offset >= o.batchSize) {
        const batch = offset === 0 && page.length === o.batchSize ? page : page.slice(offset, offset + o.batchSize);
        offset += o.batchSize;
        if (await flush(batch)) return;
      }
      for (let i = offset; i < page.length; i++) buffer.push(page[i]!);
    }
    if (buffer.length > 0 && (await flush(buffer))) return;
    // A filtered read skips what does not pass; having read to the end, everything up to `head`
    // (taken before the read, and gap-safe) was seen: move the checkpoint there, or the runner
    // would read the same skipped events again and again.
    if (o.filter !== undefined && (this.current?.position ?? 0) < head) await this.advanceTo(head);
    if (this.rebuilding === undefined && !this.everLive) meter?.finish(this.current?.position ?? 0);
    this.o.onAdvance();
  }

  /**
   * Commits a batch. After a handler failure the events before the failing one are committed at
   * once, and the failing event is retried alone with backoff until it succeeds or the attempts
   * run out; then it is parked (`poisonEvents: 'park'`) or the runner stops naming it. Transient
   * faults are not the handler's: they go to the consumer loop, which retries without limit.
   */
  private async applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    let remaining = events;
    let limit = remaining.length;
    let attempt = 0;
    let failing: { readonly position: number; readonly error: ProjectionHandlerError } | undefined;
    const { retry } = this.o;
    while (remaining.length > 0) {
      if (this.session.interrupted) return;
      const batch = remaining.length > limit ? remaining.slice(0, limit) : remaining;
      try {
        await this.commitBatch(batch);
      } catch (error) {
        if (!(error instanceof ProjectionHandlerError) || this.o.isTransient(error)) throw error;
        attempt++;
        const index = batch.findIndex((e) => e.position === error.position);
        if (index < 0) throw error;
        failing = { position: error.position, error };
        limit = Math.max(1, index);
        // With a good prefix before the failing event, commit that first (no delay, no attempt spent).
        const prefixFirst = index > 0;
        const willRetry = attempt < retry.maxAttempts;
        const parks = !willRetry && this.o.poisonEvents === 'park';
        const delayMs = willRetry && !prefixFirst ? backoffDelay(retry, attempt) : 0;
        this.session.report(error, { attempt, willRetry, delayMs, transient: false });
        if (!willRetry && !prefixFirst) {
          if (!parks) throw error.withAttempts(attempt, batch[index]!);
          await this.park(batch[index]!, error, attempt);
          remaining = remaining.slice(1);
          ({ failing, attempt, limit } = { failing: undefined, attempt: 0, limit: remaining.length });
          continue;
        }
        if (delayMs > 0) await this.session.pause(delayMs);
        continue;
      }
      this.session.progressed();
      remaining = remaining.slice(batch.length);
      if (failing === undefined) {
        attempt = 0;
      } else if (batch.some((e) => e.position === failing!.position)) {
        failing = undefined;
        attempt = 0;
        limit = remaining.length;
      } else {
        // Only the events before the failing one were committed: retry it alone, after the backoff.
        limit = 1;
        if (attempt >= retry.maxAttempts) {
          if (this.o.poisonEvents !== 'park') throw failing.error.withAttempts(attempt, remaining[0]!);
          await this.park(remaining[0]!, failing.error, attempt);
          remaining = remaining.slice(1);
          ({ failing, attempt, limit } = { failing: undefined, attempt: 0, limit: remaining.length });
          continue;
        }
        await this.session.pause(backoffDelay(retry, attempt));
      }
    }
  }

  private async advanceTo(position: number): Promise<void> {
    const next: Checkpoint = { position, version: this.o.projection.version };
    await this.o.target.commit(this.name, this.current, next, () => undefined);
    this.current = next;
    this.o.onAdvance();
  }

  /** Moves the checkpoint past a poison event and records it as a dead letter, in one commit. */
  private async park(event: RecordedEvent, error: unknown, attempts: number): Promise<void> {
    const next: Checkpoint = { position: event.position, version: this.o.projection.version };
    const letter = newDeadLetter(this.name, event, error, attempts);
    await this.o.target.commit(this.name, this.current, next, () => undefined, { kind: 'park', letter });
    this.current = next;
    this.parked++;
  }

  private async commitBatch(batch: readonly RecordedEvent[], deadLetter?: DeadLetterWrite, checkpoint = true): Promise<void> {
    const expected = this.current;
    const next: Checkpoint | undefined = checkpoint
      ? { position: batch[batch.length - 1]!.position, version: this.o.projection.version }
      : undefined;
    const { projection, target } = this.o;
    await target.commit(
      projection.name,
      expected,
      next,
      target.synchronous ? (ctx) => applyEventsSync(projection, batch, ctx) : (ctx) => applyEventsAsync(projection, batch, ctx),
      deadLetter,
    );
    if (next !== undefined) this.current = next;
  }

  /**
   * Re-applies parked events an operator asked to retry. They come after later events were
   * applied (the checkpoint is past them), so handlers of parking projections should tolerate
   * order changes within what was parked. A retry that fails again stays parked, its error updated.
   */
  private async retryParked(): Promise<void> {
    const deadLetters = this.o.target.deadLetters;
    if (deadLetters === undefined) return;
    const requests = await deadLetters.retryRequested(this.name, RETRIES_PER_TURN);
    for (const letter of requests) {
      if (this.session.interrupted) return;
      const [event] = await this.o.store.readAll({ fromPosition: letter.position, limit: 1 }).toArray();
      if (event === undefined || event.position !== letter.position || event.eventId !== letter.eventId) {
        const error = `event ${letter.eventId} is no longer at position ${letter.position} of the log`;
        await this.o.target.commit(this.name, undefined, undefined, () => undefined, { kind: 'retry-failed', position: letter.position, error });
        continue;
      }
      try {
        await this.commitBatch([event], { kind: 'resolve', position: letter.position }, false);
      } catch (error) {
        if (!(error instanceof ProjectionHandlerError) || this.o.isTransient(error)) throw error;
        this.session.report(error, { attempt: letter.attempts + 1, willRetry: false, delayMs: 0, transient: false });
        const write: DeadLetterWrite = { kind: 'retry-failed', position: letter.position, error: errorText(error) };
        await this.o.target.commit(this.name, undefined, undefined, () => undefined, write);
      }
    }
    this.parked = await deadLetters.count(this.name);
  }

  private runHook(name: 'setup' | 'reset', hook: (ctx: Ctx) => MaybePromise<void>, ctx: Ctx): MaybePromise<void> {
    if (this.o.target.synchronous) return runHookSync(this.name, name, hook, ctx);
    return hook(ctx);
  }
}

export function missingReset(projection: string): Error {
  return new InvalidArgumentError(
    `Projection '${projection}' cannot be rebuilt: it has no reset(ctx) that empties its read model. ` +
      `Add one to its definition (a version bump also needs it).`,
  );
}

