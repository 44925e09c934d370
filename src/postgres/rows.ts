import pg from 'pg';
import type { CustomTypesConfig } from 'pg';
import { frozenDate } from '../events/frozen-date.js';
import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { parseStoredJson } from '../events/validation.js';
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

/**
 * `recorded_at` travels as epoch seconds (float8): far cheaper for the server to format and for
 * the client to parse than timestamp text. Stored values are whole milliseconds, so rounding
 * the product restores them exactly.
 */
const RECORDED_SECONDS = `date_part('epoch', recorded_at)`;

/** readStream columns (the stream id is known): position, version, event_id, type, data, metadata, seconds. */
export const STREAM_COLUMNS = `position, version, event_id, type, data, metadata, ${RECORDED_SECONDS}`;

/** readAll columns: position, stream_id, version, event_id, type, data, metadata, seconds. */
export const LOG_COLUMNS = `position, stream_id, version, event_id, type, data, metadata, ${RECORDED_SECONDS}`;

export type StreamRow = [number, number, string, string, string, string, number];
export type LogRow = [number, string, number, string, string, string, string, number];

const EMPTY_METADATA: EventMetadata = Object.freeze({});

function metadataFrom(text: string): EventMetadata {
  return text === '{}' ? EMPTY_METADATA : (parseStoredJson(text) as EventMetadata);
}

export function streamRowsToEvents(streamId: string, rows: readonly StreamRow[]): RecordedEvent[] {
  const events = new Array<RecordedEvent>(rows.length);
  const dates = new DateCache();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    events[i] = recordedFromRow(streamId, r[1], r[0], r[3], parseStoredJson(r[4]), metadataFrom(r[5]), r[2], dates.at(r[6]));
  }
  return events;
}

export function logRowsToEvents(rows: readonly LogRow[]): RecordedEvent[] {
  const events = new Array<RecordedEvent>(rows.length);
  const dates = new DateCache();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    events[i] = recordedFromRow(r[1], r[2], r[0], r[4], parseStoredJson(r[5]), metadataFrom(r[6]), r[3], dates.at(r[7]));
  }
  return events;
}

/** Consecutive events of one append share their timestamp, as the in-memory store's do. */
class DateCache {
  private seconds = Number.NaN;
  private date = frozenDate(0);

  at(seconds: number): Date {
    if (seconds !== this.seconds) {
      this.seconds = seconds;
      this.date = frozenDate(Math.round(seconds * 1000));
    }
    return this.date;
  }
}

export { parseStoredJson };
