import type { QueryConfig } from 'pg';
import { expectedVersionConflict, type ConcurrencyError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import type { AppendResult } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import type { GroupMember, GroupOutcome } from '../store/group-commit.js';
import { recordEvents, type PreparedAppend } from '../store/store-input.js';
import { CONFLICT_SQLSTATE } from './pg-errors.js';
import { ROW_TYPES } from './rows.js';
import { quoteIdentifier } from './schema-name.js';

/** The append statements of one schema. */
export interface AppendStatements {
  readonly appendName: string;
  readonly append: string;
  readonly appendOneName: string;
  readonly appendOne: string;
  readonly groupName: string;
  readonly group: string;
  readonly unappend: string;
}

export function appendStatements(schema: string): AppendStatements {
  const s = quoteIdentifier(schema);
  return {
    // Prepared-statement names: at most 63 bytes (the server truncates longer ones, and two
    // schemas' names could then collide on one connection), so 6 + at most 53.
    appendName: `ef_am_${schema}`,
    append: `SELECT stream_version, first_position FROM ${s}.append_events($1::text[], $2::bigint[], $3::integer[], $4::integer[], $5::uuid[], $6::text[], $7::json, $8::json, $9::timestamptz, $10::boolean)`,
    appendOneName: `ef_a1_${schema}`,
    appendOne: `SELECT stream_version, first_position FROM ${s}.append_event($1::text, $2::bigint, $3::uuid, $4::text, $5::json, $6::json, $7::timestamptz, $8::boolean)`,
    groupName: `ef_ag_${schema}`,
    group: `SELECT stream_version, first_position, status FROM ${s}.append_group($1::text[], $2::integer[], $3::bigint[], $4::integer[], $5::integer[], $6::uuid[], $7::text[], $8::json, $9::json, $10::timestamptz, $11::boolean)`,
    unappend: `SELECT ${s}.unappend($1::text[], $2::bigint[], $3::bigint, $4::bigint)`,
  };
}

/** One row of `append_events` / `append_group` per stream, in input order. */
export interface AppendRow {
  readonly stream_version: number;
  readonly first_position: number;
  /** `append_group` only: 0 written, 1 this stream's check failed, 2 another stream's did. */
  readonly status?: number;
}

/** A prepared call and the event ids it assigns, per stream. */
export interface AppendCall {
  readonly query: QueryConfig;
  readonly eventIds: string[][];
}

/** How the SQL functions encode the non-numeric expected versions. */
function encodeExpected(expected: ExpectedVersion): number {
  switch (expected) {
    case 'any':
      return -1;
    case 'stream-exists':
      return -2;
    case 'no-stream':
      return 0;
    default:
      return expected;
  }
}

/** One event to one stream: `append_event`, scalar parameters (see its comment in ddl.ts). */
export function appendOneCall(sql: AppendStatements, append: PreparedAppend, recordedAt: Date, notify: boolean): AppendCall {
  const event = append.events[0]!;
  const id = crypto.randomUUID();
  return {
    query: {
      name: sql.appendOneName,
      text: sql.appendOne,
      values: [append.streamId, encodeExpected(append.expectedVersion), id, event.type, event.dataJson, event.metadataJson, recordedAt.toISOString(), notify],
      types: ROW_TYPES,
    },
    eventIds: [[id]],
  };
}

/** The per-stream and per-event arrays `append_events` and `append_group` take. */
function appendArrays(appends: readonly PreparedAppend[]) {
  const streamIds: string[] = [];
  const expected: number[] = [];
  const counts: number[] = [];
  const eventStreams: number[] = [];
  const ids: string[] = [];
  const types: string[] = [];
  let data = '[';
  let metadata = '[';
  const eventIds: string[][] = [];
  for (let s = 0; s < appends.length; s++) {
    const append = appends[s]!;
    streamIds.push(append.streamId);
    expected.push(encodeExpected(append.expectedVersion));
    counts.push(append.events.length);
    const streamEventIds: string[] = [];
    for (const event of append.events) {
      const id = crypto.randomUUID();
      streamEventIds.push(id);
      ids.push(id);
      types.push(event.type);
      eventStreams.push(s + 1);
      if (data.length > 1) {
        data += ',';
        metadata += ',';
      }
      data += event.dataJson;
      metadata += event.metadataJson;
    }
    eventIds.push(streamEventIds);
  }
  return { streamIds, expected, counts, eventStreams, ids, types, data: data + ']', metadata: metadata + ']', eventIds };
}

/** One call's appends (any number of streams and events): `append_events`. */
export function appendCall(sql: AppendStatements, appends: readonly PreparedAppend[], recordedAt: Date, notify: boolean): AppendCall {
  const a = appendArrays(appends);
  return {
    query: {
      name: sql.appendName,
      text: sql.append,
      values: [a.streamIds, a.expected, a.counts, a.eventStreams, a.ids, a.types, a.data, a.metadata, recordedAt.toISOString(), notify],
      types: ROW_TYPES,
    },
    eventIds: a.eventIds,
  };
}

/** Several calls' appends in one transaction: `append_group`. Streams are distinct across members. */
export function groupCall(sql: AppendStatements, members: readonly GroupMember[], recordedAt: Date, notify: boolean): AppendCall {
  const flat: PreparedAppend[] = [];
  const owners: number[] = [];
  members.forEach((member, index) => {
    for (const append of member.appends) {
      flat.push(append);
      owners.push(index + 1);
    }
  });
  const a = appendArrays(flat);
  return {
    query: {
      name: sql.groupName,
      text: sql.group,
      values: [a.streamIds, owners, a.expected, a.counts, a.eventStreams, a.ids, a.types, a.data, a.metadata, recordedAt.toISOString(), notify],
      types: ROW_TYPES,
    },
    eventIds: a.eventIds,
  };
}

export function buildResults(
  appends: readonly PreparedAppend[],
  rows: readonly AppendRow[],
  eventIds: readonly string[][],
  recordedAt: Date,
): AppendResult[] {
  return appends.map((append, index) => {
    const row = rows[index]!;
    const count = append.events.length;
    const events = Object.freeze(
      recordEvents(append, row.stream_version - count + 1, (i) => row.first_position + i, recordedAt, eventIds[index]),
    );
    return {
      streamId: append.streamId,
      version: row.stream_version,
      position: count === 0 ? 0 : row.first_position + count - 1,
      events,
    };
  });
}

/** Splits `append_group`'s rows into one outcome per member: its results, or its conflict. */
export function groupOutcomes(
  members: readonly GroupMember[],
  rows: readonly AppendRow[],
  eventIds: readonly string[][],
  recordedAt: Date,
): GroupOutcome<AppendResult[]>[] {
  if (rows.length !== eventIds.length) throw new Error(`eventfold: append_group returned ${rows.length} rows for ${eventIds.length} streams (a bug).`);
  const outcomes: GroupOutcome<AppendResult[]>[] = [];
  let at = 0;
  for (const member of members) {
    const n = member.appends.length;
    const memberRows = rows.slice(at, at + n);
    const failed = memberRows.findIndex((row) => row.status === 1);
    if (failed >= 0) {
      const append = member.appends[failed]!;
      outcomes.push({ ok: false, error: expectedVersionConflict(append.streamId, append.expectedVersion, memberRows[failed]!.stream_version) });
    } else {
      outcomes.push({ ok: true, value: buildResults(member.appends, memberRows, eventIds.slice(at, at + n), recordedAt) });
    }
    at += n;
  }
  return outcomes;
}

/** Turns `append_events`' EF001 error (DETAIL '<stream index>:<actual>') into a ConcurrencyError. */
export function conflictFrom(error: unknown, appends: readonly PreparedAppend[]): ConcurrencyError | undefined {
  const pgError = error as { code?: unknown; detail?: unknown };
  if (pgError?.code !== CONFLICT_SQLSTATE || typeof pgError.detail !== 'string') return undefined;
  const [index, actual] = pgError.detail.split(':').map(Number);
  const append = appends[(index ?? 0) - 1];
  if (append === undefined || actual === undefined || !Number.isSafeInteger(actual)) return undefined;
  return expectedVersionConflict(append.streamId, append.expectedVersion, actual);
}

/** Every event of one call's results, in order (what its hooks receive). */
export function eventsOf(results: readonly AppendResult[]): RecordedEvent[] {
  const all: RecordedEvent[] = [];
  for (const result of results) for (const event of result.events) all.push(event);
  return all;
}
