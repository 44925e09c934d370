import pg from 'pg';
import type { CustomTypesConfig } from 'pg';
import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { deepFreezeJson } from '../events/validation.js';
import { recordedFromRow } from '../store/store-input.js';

const INT8 = 20;
const JSON_OID = 114;

const identity = (value: string): string => value;
const toNumber = (value: string): number => Number(value);

/**
 * Per-query type parsing: bigint columns (positions, versions) become numbers (they stay below
 * 2^53), json columns arrive as text so this module parses and freezes them once. Nothing global
 * is changed, so other users of `pg` in the process are unaffected.
 */
export const ROW_TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8) return toNumber;
    if (oid === JSON_OID) return identity;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as CustomTypesConfig['getTypeParser'],
};

/** Columns every event read selects, in the order `eventFromRow` expects. */
export const EVENT_COLUMNS =
  'position, stream_id, version, event_id, type, data, metadata, ' +
  '(extract(epoch FROM recorded_at) * 1000)::float8 AS recorded_ms';

export type EventRow = [
  position: number,
  streamId: string,
  version: number,
  eventId: string,
  type: string,
  data: string,
  metadata: string,
  recordedMs: number,
];

const EMPTY_METADATA: EventMetadata = Object.freeze({});

export function parseStoredJson(text: string): unknown {
  return deepFreezeJson(JSON.parse(text) as unknown);
}

export function eventFromRow(row: EventRow): RecordedEvent {
  const metadata = row[6] === '{}' ? EMPTY_METADATA : (parseStoredJson(row[6]) as EventMetadata);
  return recordedFromRow(row[1], row[2], row[0], row[4], parseStoredJson(row[5]), metadata, row[3], new Date(row[7]));
}

export function eventsFromRows(rows: readonly EventRow[]): RecordedEvent[] {
  const events = new Array<RecordedEvent>(rows.length);
  for (let i = 0; i < rows.length; i++) events[i] = eventFromRow(rows[i]!);
  return events;
}
