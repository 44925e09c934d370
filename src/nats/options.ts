import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { InvalidArgumentError } from '../errors.js';
import type { EventLimits } from '../events/validation.js';
import type { Logger } from '../logging.js';
import { assertValidNatsName, assertValidSubjectPrefix } from './subjects.js';

export type NatsStorage = 'file' | 'memory';

/** Where the store connects: a URL (or several, for a cluster), or a connection you own. */
export type NatsConnectionSource =
  | {
      /** `nats://host:port`, or a list of a cluster's URLs. The store owns and closes this connection. */
      readonly servers: string | readonly string[];
      /** Passed to `connect()` (credentials, TLS, reconnect settings). */
      readonly connectionOptions?: Partial<ConnectionOptions>;
      readonly connection?: undefined;
    }
  | {
      /** An open connection; the store never closes it. */
      readonly connection: NatsConnection;
      readonly servers?: undefined;
    };

export interface NatsStreamOptions {
  /** JetStream stream name. Default `EVENTFOLD`. */
  readonly stream?: string;
  /** Subject prefix: events go to `<prefix>.s.<stream token>`. Default `eventfold`. */
  readonly subjectPrefix?: string;
  /** Replicas of the stream (1 to 5; 3 in a 3-node cluster). Default 1. */
  readonly replicas?: number;
  /** `file` (default, durable) or `memory`. */
  readonly storage?: NatsStorage;
  /**
   * Create the stream so that `NatsStreamPruning` can erase messages (`deny_delete` off, and the
   * subjects `<prefix>.r.*` for the rewritten messages). Default false: the stream refuses every
   * delete. JetStream cannot lift `deny_delete` on an existing stream.
   */
  readonly allowPruning?: boolean;
}

export type NatsEventStoreOptions = NatsConnectionSource &
  NatsStreamOptions & {
    readonly limits?: Partial<EventLimits>;
    /** Messages per consumer pull when reading (default 256). */
    readonly pageSize?: number;
    /** How long one publish waits for its acknowledgement (default 5,000 ms). */
    readonly publishTimeoutMs?: number;
    /**
     * How long an append keeps retrying an unacknowledged publish (leader election, reconnect)
     * before it rejects with `StoreUnavailableError` (default 30,000 ms). Retries carry the same
     * `Nats-Msg-Id`, so they never store an append twice; it must stay below the stream's
     * duplicate window (2 minutes).
     */
    readonly retryWindowMs?: number;
    readonly logger?: Logger;
    /**
     * Which sequence the server checks on each append (see docs/adapters.md):
     * - `'subject'`: `Nats-Expected-Last-Subject-Sequence`, the stream's own last message. Appends
     *   to different streams never contend. Exact on a single server; on a nats-server 2.9
     *   cluster concurrent publishes with the same expected subject sequence can all be accepted
     *   (the check is a pre-check on the leader, outside RAFT), so do not use it there.
     * - `'stream'`: `Nats-Expected-Last-Sequence`, the whole JetStream stream's last message,
     *   which the leader serialises even on 2.9 clusters. Every append contends with every other
     *   one (a refusal caused by another stream is retried, not reported).
     * Default: `'stream'` when `replicas > 1`, else `'subject'`. A new stream's first append
     * always uses the subject check with sequence 0, which is exact everywhere.
     */
    readonly expectedSequence?: NatsExpectedSequence;
  };

export type NatsExpectedSequence = 'subject' | 'stream';

export interface ResolvedStreamOptions {
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly replicas: number;
  readonly storage: NatsStorage;
  /** The subject filter of every event message: `<prefix>.s.*`. */
  readonly eventSubjects: string;
  readonly allowPruning: boolean;
  /** The subjects of pruned messages' rewrites: `<prefix>.r.*`. */
  readonly rewriteSubjects: string;
}

export const DUPLICATE_WINDOW_MS = 120_000;

export function resolveStreamOptions(options: NatsStreamOptions): ResolvedStreamOptions {
  const stream = options.stream ?? 'EVENTFOLD';
  assertValidNatsName('stream', stream);
  const subjectPrefix = options.subjectPrefix ?? 'eventfold';
  assertValidSubjectPrefix(subjectPrefix);
  const replicas = options.replicas ?? 1;
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to 5, got ${String(replicas)}.`);
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') {
    throw new InvalidArgumentError(`storage must be 'file' or 'memory', got ${String(storage)}.`);
  }
  const allowPruning = options.allowPruning ?? false;
  if (typeof allowPruning !== 'boolean') throw new InvalidArgumentError(`allowPruning must be a boolean, got ${String(allowPruning)}.`);
  return { stream, subjectPrefix, replicas, storage, eventSubjects: `${subjectPrefix}.s.*`, allowPruning, rewriteSubjects: `${subjectPrefix}.r.*` };
}

export function positiveInteger(name: string, value: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}, got ${String(value)}.`);
  }
  return value;
}

export function assertConnectionSource(options: NatsConnectionSource): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('NatsEventStore takes options with `servers` (a URL or a list) or `connection`.');
  }
  const hasServers = options.servers !== undefined;
  const hasConnection = options.connection !== undefined;
  if (hasServers === hasConnection) {
    throw new InvalidArgumentError('Give exactly one of `servers` (a nats:// URL or a list) and `connection`.');
  }
  if (hasServers) {
    const list = typeof options.servers === 'string' ? [options.servers] : options.servers;
    if (!Array.isArray(list) || list.length === 0 || !list.every((url) => typeof url === 'string' && /^(nats|tls|wss?):\/\/[^\s]+$|^[^\s/]+:\d+$/.test(url))) {
      throw new InvalidArgumentError(`servers must be nats:// URLs (or host:port), got ${JSON.stringify(options.servers)}.`);
    }
  }
}
