import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { AnyCommand, CommandMiddleware } from '../commands/command-bus.js';
import { InvalidArgumentError, isEventfoldError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import type { AnyEvent, JsonValue, RecordedEvent } from '../events/types.js';
import { assertValidStreamId } from '../events/validation.js';
import type { AppendOptions, AppendResult, EventStore, StreamAppend } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import { checkAppendManyShape, checkAppendShape, EventStoreDecorator } from '../store/decorator.js';
import { CommandPendingError, IdempotencyKeyReusedError } from './errors.js';

/** Prefix of the reservation stream that records a handled command: `$command-<commandId>`. */
export const COMMAND_STREAM_PREFIX = '$command-';
/** First event of a reservation stream, written atomically with the command's first events. */
export const COMMAND_RECEIVED = '$CommandReceived';
/** Second event of a reservation stream: the command's result, as JSON. */
export const COMMAND_COMPLETED = '$CommandCompleted';
/**
 * Ends a claim whose events could not be written (on stores without atomic multi-stream appends,
 * where the claim is written first): the id is free again, and the next attempt claims it anew.
 */
export const COMMAND_ABANDONED = '$CommandAbandoned';

export interface IdempotentCommandsOptions {
  /**
   * What identifies "the same command" besides its id; a repeat with another fingerprint is
   * refused with `IdempotencyKeyReusedError`. Default: `{ type, data }`. Only a SHA-256 of it is
   * stored; leave secrets (passwords) out of it, since a hash of a guessable secret can be guessed.
   */
  readonly fingerprint?: (command: AnyCommand) => JsonValue;
  /** How long a repeat waits for a first attempt that is still running to record its result. Default 10 s. */
  readonly waitForResultMs?: number;
  /** Told about retried writes of a command's result. */
  readonly logger?: Logger;
}

/** Attempts at recording a result after a transient failure (the events are already stored). */
const RECORD_ATTEMPTS = 5;

interface Running {
  readonly commandId: string;
  readonly received: AnyEvent;
  /** The reservation stream's version before this attempt's claim (0, or after an abandoned claim). */
  readonly claimFrom: number;
  reserved: boolean;
}

interface Record {
  readonly status: 'pending' | 'completed' | 'abandoned';
  readonly fingerprint: string;
  readonly result: unknown;
  /** The reservation stream's version. */
  readonly version: number;
}

const expectedAt = (version: number): ExpectedVersion => (version === 0 ? 'no-stream' : version);

/**
 * Makes commands idempotent: a repeat of a command id (a retried HTTP request, a redelivered
 * message) stores nothing new and resolves to the first attempt's result.
 *
 * How: build repositories on `idempotency.store` and add `idempotency.middleware()` to the bus.
 * The first write a command makes carries one more stream in the same atomic `appendMany`: the
 * reservation `$command-<id>`, appended with `'no-stream'`. Of two concurrent attempts exactly one
 * can write it; the other fails, finds the reservation, and answers with the first attempt's
 * result, which is appended to the reservation stream once the handler returns. Reservations are
 * events, kept as long as the log.
 */
export class IdempotentCommands {
  readonly store: EventStore;
  private readonly context = new AsyncLocalStorage<Running>();
  private readonly fingerprintOf: (command: AnyCommand) => JsonValue;
  private readonly waitForResultMs: number;
  private readonly logger: Logger;
  /** Attempts running in this process: a concurrent repeat here shares the first one's outcome. */
  private readonly inFlight = new Map<string, { readonly fingerprint: string; readonly outcome: Promise<unknown> }>();

  constructor(
    private readonly inner: EventStore,
    options: IdempotentCommandsOptions = {},
  ) {
    this.fingerprintOf = options.fingerprint ?? ((command) => ({ type: command.type, data: command.data as JsonValue }));
    this.waitForResultMs = options.waitForResultMs ?? 10_000;
    this.logger = options.logger ?? silentLogger;
    this.store = new ReservingEventStore(inner, this.context, this.logger);
  }

  /** Command bus middleware: commands that carry a `commandId` run through `execute`. */
  middleware(): CommandMiddleware {
    return (command, _context, next) =>
      command.commandId === undefined ? next() : this.execute(command.commandId, command, next);
  }

  /**
   * Runs `handle` once per `commandId`: a repeat stores nothing and resolves to the recorded result
   * of the first attempt (as JSON). The handler must write through `this.store`.
   */
  async execute<R>(commandId: string, command: AnyCommand, handle: () => Promise<R>): Promise<R> {
    const streamId = reservationStreamOf(commandId);
    const fingerprint = hashOf(this.fingerprintOf(command));
    const running = this.inFlight.get(commandId);
    if (running !== undefined) {
      if (running.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(commandId);
      return running.outcome as Promise<R>;
    }
    const outcome = this.executeOnce(commandId, streamId, fingerprint, command, handle);
    this.inFlight.set(commandId, { fingerprint, outcome });
    try {
      return await outcome;
    } finally {
      this.inFlight.delete(commandId);
    }
  }

  private async executeOnce<R>(commandId: string, streamId: string, fingerprint: string, command: AnyCommand, handle: () => Promise<R>): Promise<R> {
    const existing = await this.readRecord(streamId);
    if (existing !== undefined && existing.status !== 'abandoned') return this.answerRepeat(commandId, streamId, fingerprint, existing);
    const running: Running = {
      commandId,
      received: { type: COMMAND_RECEIVED, data: { commandType: command.type, fingerprint } },
      claimFrom: existing?.version ?? 0,
      reserved: false,
    };
    let result: R;
    try {
      result = await this.context.run(running, handle);
    } catch (error) {
      // A concurrent twin may have won the reservation (or the race for the same aggregate):
      // then this attempt is a repeat, and answers like one.
      if (running.reserved) throw error;
      const twin = await this.readRecord(streamId);
      if (twin === undefined || twin.status === 'abandoned') throw error;
      return this.answerRepeat(commandId, streamId, fingerprint, twin);
    }
    const completed: AnyEvent = { type: COMMAND_COMPLETED, data: { result: toJson(result) } };
    if (running.reserved) {
      await this.recordResult(commandId, streamId, completed, running.claimFrom + 1);
      return result;
    }
    // The handler wrote nothing: record the command now; a twin that got there first wins.
    try {
      await this.inner.append(streamId, [running.received, completed], { expectedVersion: expectedAt(running.claimFrom) });
    } catch (error) {
      if (!isVersionConflict(error)) throw error;
      const twin = await this.readRecord(streamId);
      if (twin !== undefined && twin.status !== 'abandoned') return this.answerRepeat(commandId, streamId, fingerprint, twin);
      throw error;
    }
    return result;
  }

  /**
   * Appends the result after the events were stored. A transient store failure is retried with
   * capped exponential backoff and jitter: giving up would leave the command pending for repeats.
   */
  private async recordResult(commandId: string, streamId: string, completed: AnyEvent, claimedAt: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.inner.append(streamId, [completed], { expectedVersion: claimedAt });
        return;
      } catch (error) {
        if (!isEventfoldError(error, 'STORE_UNAVAILABLE') || attempt >= RECORD_ATTEMPTS) throw error;
        const delay = Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);
        this.logger.warn('Recording a command result failed; retrying', { commandId, attempt, delayMs: Math.round(delay), error });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The recorded result of a handled command, or undefined when the id was never handled. */
  async recordOf(commandId: string): Promise<{ readonly completed: boolean; readonly result: unknown } | undefined> {
    const record = await this.readRecord(reservationStreamOf(commandId));
    return record === undefined || record.status === 'abandoned' ? undefined : { completed: record.status === 'completed', result: record.result };
  }

  private async answerRepeat<R>(commandId: string, streamId: string, fingerprint: string, record: Record): Promise<R> {
    if (record.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(commandId);
    const deadline = Date.now() + this.waitForResultMs;
    let delay = 5;
    let current: Record | undefined = record;
    while (current === undefined || current.status !== 'completed') {
      // Still running, or its claim was abandoned (the first attempt failed): retry later.
      if (Date.now() >= deadline || current === undefined || current.status === 'abandoned') throw new CommandPendingError(commandId);
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(delay * 2, 200);
      current = await this.readRecord(streamId);
    }
    return current?.result as R;
  }

  private async readRecord(streamId: string): Promise<Record | undefined> {
    let events: RecordedEvent[];
    try {
      // Newest first: the last event says where the record stands, the one before names the claim.
      events = await this.inner.readStream(streamId, { backwards: true, limit: 2 }).toArray();
    } catch (error) {
      if (isEventfoldError(error, 'STREAM_NOT_FOUND')) return undefined;
      throw error;
    }
    const last = events[0];
    if (last === undefined) return undefined;
    const fingerprintOf = (e: RecordedEvent | undefined) => String((e?.data as { fingerprint?: unknown } | undefined)?.fingerprint);
    switch (last.type) {
      case COMMAND_COMPLETED:
        return { status: 'completed', fingerprint: fingerprintOf(events[1]), result: (last.data as { result?: unknown }).result, version: last.version };
      case COMMAND_ABANDONED:
        return { status: 'abandoned', fingerprint: '', result: undefined, version: last.version };
      default:
        return { status: 'pending', fingerprint: fingerprintOf(last), result: undefined, version: last.version };
    }
  }
}

/** A failed expected-version check, whichever kind (a conflict, or a stream that already exists). */
function isVersionConflict(error: unknown): boolean {
  return (
    isEventfoldError(error, 'CONCURRENCY_CONFLICT') ||
    isEventfoldError(error, 'STREAM_ALREADY_EXISTS') ||
    isEventfoldError(error, 'AGGREGATE_ALREADY_EXISTS')
  );
}

/** The reservation stream id of a command id; validates it. */
export function reservationStreamOf(commandId: string): string {
  if (typeof commandId !== 'string' || commandId.length === 0 || commandId.length > 200) {
    throw new InvalidArgumentError(`A command id (idempotency key) must be a string of 1–200 characters, got ${JSON.stringify(commandId)}.`);
  }
  const streamId = COMMAND_STREAM_PREFIX + commandId;
  assertValidStreamId(streamId);
  return streamId;
}

/** Adds the reservation to the first write a running command makes (see `IdempotentCommands`). */
class ReservingEventStore extends EventStoreDecorator {
  constructor(
    inner: EventStore,
    private readonly context: AsyncLocalStorage<Running>,
    private readonly logger: Logger,
  ) {
    super(inner);
  }

  override async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    checkAppendShape(events, options);
    const running = this.context.getStore();
    if (running === undefined || running.reserved || events.length === 0) return this.inner.append(streamId, events, options);
    const [result] = await this.appendMany([{ streamId, events, expectedVersion: options.expectedVersion }]);
    return result!;
  }

  override async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    checkAppendManyShape(appends);
    const running = this.context.getStore();
    if (running === undefined || running.reserved || appends.every((a) => a.events.length === 0)) {
      return this.inner.appendMany(appends);
    }
    const reservation: StreamAppend = {
      streamId: reservationStreamOf(running.commandId),
      events: [running.received],
      expectedVersion: expectedAt(running.claimFrom),
    };
    if (!this.inner.capabilities.atomicMultiStreamAppend) {
      // No atomic multi-stream append: claim first, then write. A write that fails abandons the
      // claim (the id is free again); a crash in between leaves a claim without events, which
      // repeats report as pending: never a second effect.
      await this.inner.append(reservation.streamId, reservation.events, { expectedVersion: reservation.expectedVersion });
      running.reserved = true;
      try {
        return await this.inner.appendMany(appends);
      } catch (error) {
        running.reserved = false;
        await this.inner
          .append(reservation.streamId, [{ type: COMMAND_ABANDONED, data: null }], { expectedVersion: running.claimFrom + 1 })
          .catch((abandonError: unknown) => {
            // The claim stays: repeats report the command as pending, which is safe.
            this.logger.warn('Abandoning a command claim failed', { commandId: running.commandId, error: abandonError });
          });
        throw error;
      }
    }
    const results = await this.inner.appendMany([...appends, reservation]);
    running.reserved = true;
    return results.slice(0, appends.length);
  }
}

function toJson(value: unknown): JsonValue {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

/** SHA-256 of canonical JSON (keys sorted), so key order does not change the fingerprint. */
function hashOf(value: JsonValue): string {
  return createHash('sha256').update(canonical(value)).digest('hex');
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.filter((k) => (value as { [k: string]: unknown })[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((value as { [k: string]: unknown })[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
