import { InvalidArgumentError } from '../errors.js';

/**
 * An optional, read-only view of what a store holds, for tools (the `eventfold` CLI, the event
 * browser) that list streams. It is not part of the `EventStore` port: an engine that cannot list
 * streams cheaply simply does not offer it. The SQLite and PostgreSQL adapters do
 * (`SqliteCatalog`, `PostgresCatalog`).
 */
export interface StreamSummary {
  readonly streamId: string;
  /** The stream's version: its number of events. */
  readonly version: number;
  /** Global position of the stream's last event. */
  readonly lastPosition: number;
  /** When the stream's last event was recorded. */
  readonly lastWrittenAt: Date;
}

export interface ListStreamsOptions {
  /** Only streams whose id starts with this (case-sensitive). Default: all. */
  readonly prefix?: string;
  /** Keyset paging: only streams whose id sorts after this one (code point order). */
  readonly after?: string;
  /** Most streams to return. Default 100, at most 10,000. */
  readonly limit?: number;
}

export interface EventStoreCatalog {
  /** Streams in code point order of their ids. */
  listStreams(options?: ListStreamsOptions): Promise<StreamSummary[]>;
}

export const DEFAULT_LIST_STREAMS_LIMIT = 100;
export const MAX_LIST_STREAMS_LIMIT = 10_000;

/** Checks and fills in `ListStreamsOptions`; shared by the adapters so they agree on bad input. */
export function resolveListStreamsOptions(options: ListStreamsOptions = {}): { prefix: string; after: string | undefined; limit: number } {
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw new InvalidArgumentError('listStreams: prefix must be a string.');
  const after = options.after;
  if (after !== undefined && typeof after !== 'string') throw new InvalidArgumentError('listStreams: after must be a string.');
  const limit = options.limit ?? DEFAULT_LIST_STREAMS_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_STREAMS_LIMIT) {
    throw new InvalidArgumentError(`listStreams: limit must be an integer from 1 to ${MAX_LIST_STREAMS_LIMIT}, got ${String(limit)}.`);
  }
  return { prefix, after, limit };
}

/** A projection's stored checkpoint, as tools list it. */
export interface CheckpointSummary {
  readonly projection: string;
  readonly position: number;
  /** The projection version the checkpoint was written by. */
  readonly version: number;
  readonly updatedAt: Date;
}

/** A stream's last event as the SQL catalogs read it; PostgreSQL returns a Date, SQLite epoch milliseconds. */
export interface StreamSummaryRow {
  stream_id: string;
  version: number;
  position: number;
  recorded_at: Date | number;
}

export function streamSummaryFromRow(row: StreamSummaryRow): StreamSummary {
  return Object.freeze({ streamId: row.stream_id, version: row.version, lastPosition: row.position, lastWrittenAt: dateOf(row.recorded_at) });
}

/** A checkpoint row as the SQL catalogs read it. */
export interface CheckpointSummaryRow {
  name: string;
  position: number;
  version: number;
  updated_at: Date | number;
}

export function checkpointSummaryFromRow(row: CheckpointSummaryRow): CheckpointSummary {
  return Object.freeze({ projection: row.name, position: row.position, version: row.version, updatedAt: dateOf(row.updated_at) });
}

function dateOf(value: Date | number): Date {
  return value instanceof Date ? value : new Date(value);
}
