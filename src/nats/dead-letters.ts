import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { StoreClosedError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import {
  assertValidPosition,
  resolveListOptions,
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterWrite,
  type StandaloneDeadLetterStore,
} from '../projections/dead-letters.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeToken } from './subjects.js';
import { retryTransient } from './transient.js';

/** Dead-letter keys: `dead.<projection token>.<position>`; tokens never hold `.`. */
export const DEAD_LETTER_KEY_PREFIX = 'dead.';
const WRONG_LAST_SEQUENCE = 10071;

export interface NatsDeadLetterStoreOptions {
  readonly connection: NatsConnection;
  /** KV bucket name. Default `eventfold_checkpoints` (beside the checkpoints, where the CLI looks). */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
  /** How long a call retries transient NATS faults before `StoreUnavailableError`. Default 30,000 ms. */
  readonly retryWindowMs?: number;
  readonly logger?: Logger;
}

/**
 * Parked events (`poisonEvents: 'park'`) in a JetStream KV bucket, one entry per letter, for an
 * `AtLeastOnceTarget` on NATS (`deadLetters` option). A letter is written after the handlers and
 * before the checkpoint: a crash in between parks it again under the same key. `retry` and the
 * runner's updates are compare-and-sets on the entry's revision, so an operator's mark and a
 * runner's outcome never overwrite each other unseen.
 */
export class NatsDeadLetterStore implements StandaloneDeadLetterStore {
  private readonly bucketOptions: ResolvedBucket;
  private readonly retryWindowMs: number;
  private readonly logger: Logger;
  private kv: KV | undefined;

  constructor(private readonly options: NatsDeadLetterStoreOptions) {
    this.bucketOptions = resolveBucket(options, 'eventfold_checkpoints');
    this.retryWindowMs = options.retryWindowMs ?? 30_000;
    this.logger = options.logger ?? silentLogger;
  }

  async list(projection: string, options?: DeadLetterListOptions): Promise<DeadLetter[]> {
    const { limit, after } = resolveListOptions(projection, options);
    return (await this.all(projection)).filter((l) => l.position > after).slice(0, limit);
  }

  async count(projection: string): Promise<number> {
    assertValidProjectionName(projection);
    return (await this.positions(projection)).length;
  }

  async retry(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    return this.change(projection, position, (letter) => ({ ...letter, retryRequested: true }));
  }

  async discard(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    return this.call('discard a dead letter', async (kv) => {
      const key = keyOf(projection, position);
      const entry = await kv.get(key);
      if (letterOf(entry) === undefined) return false;
      await kv.delete(key);
      return true;
    });
  }

  async retryRequested(projection: string, limit: number): Promise<DeadLetter[]> {
    return (await this.all(projection)).filter((l) => l.retryRequested).slice(0, limit);
  }

  async write(projection: string, write: DeadLetterWrite): Promise<void> {
    assertValidProjectionName(projection);
    switch (write.kind) {
      case 'park':
        await this.call('park an event', (kv) => kv.put(keyOf(projection, write.letter.position), encode(write.letter)));
        return;
      case 'resolve':
        await this.call('resolve a dead letter', (kv) => kv.delete(keyOf(projection, write.position)));
        return;
      case 'retry-failed':
        await this.change(projection, write.position, (letter) => ({ ...letter, error: write.error, attempts: letter.attempts + 1, retryRequested: false }));
        return;
      case 'clear':
        for (const position of await this.positions(projection)) {
          await this.call('clear dead letters', (kv) => kv.delete(keyOf(projection, position)));
        }
        return;
    }
  }

  /** Read, change, update at the read revision; again when someone wrote in between. */
  private async change(projection: string, position: number, next: (letter: DeadLetter) => DeadLetter): Promise<boolean> {
    const key = keyOf(projection, position);
    for (;;) {
      const outcome = await this.call('update a dead letter', async (kv) => {
        const entry = await kv.get(key);
        const letter = letterOf(entry);
        if (entry === null || letter === undefined) return false;
        try {
          await kv.update(key, encode(next(letter)), entry.revision);
          return true;
        } catch (error) {
          if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) return 'again' as const;
          throw error;
        }
      });
      if (outcome !== 'again') return outcome;
    }
  }

  private async positions(projection: string): Promise<number[]> {
    const prefix = `${DEAD_LETTER_KEY_PREFIX}${encodeToken(projection)}.`;
    return this.call('list dead letters', async (kv) => {
      const positions: number[] = [];
      for await (const key of await kv.keys(`${prefix}>`)) {
        const position = Number(key.slice(prefix.length));
        if (Number.isSafeInteger(position) && position >= 1) positions.push(position);
      }
      return positions.sort((a, b) => a - b);
    });
  }

  private async all(projection: string): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    for (const position of await this.positions(projection)) {
      const letter = await this.call('read a dead letter', async (kv) => letterOf(await kv.get(keyOf(projection, position))));
      // The key names the letter: a value claiming another projection or position is not trusted.
      if (letter !== undefined) letters.push(Object.freeze({ ...letter, projection, position }));
    }
    return letters;
  }

  private call<T>(what: string, attempt: (kv: KV) => Promise<T>): Promise<T> {
    const connection = this.options.connection;
    return retryTransient(
      what,
      this.retryWindowMs,
      this.logger,
      async () => attempt((this.kv ??= await openBucket(connection, this.bucketOptions))),
      () => connection.isClosed(),
      () => new StoreClosedError('NATS dead-letter store'),
    );
  }
}

function keyOf(projection: string, position: number): string {
  return `${DEAD_LETTER_KEY_PREFIX}${encodeToken(projection)}.${position}`;
}

function encode(letter: DeadLetter): string {
  return JSON.stringify({ ...letter, parkedAt: letter.parkedAt.getTime() });
}

function letterOf(entry: KvEntry | null): DeadLetter | undefined {
  if (entry === null || entry.operation !== 'PUT') return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(entry.string()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const int = (value: unknown): number => (typeof value === 'number' && Number.isSafeInteger(value) ? value : 0);
  return {
    projection: text(raw['projection']),
    position: int(raw['position']),
    eventId: text(raw['eventId']),
    eventType: text(raw['eventType']),
    streamId: text(raw['streamId']),
    streamVersion: int(raw['streamVersion']),
    error: text(raw['error']),
    attempts: int(raw['attempts']),
    parkedAt: new Date(int(raw['parkedAt'])),
    retryRequested: raw['retryRequested'] === true,
  };
}
