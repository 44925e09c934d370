import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { parseStoredJson } from '../events/validation.js';
import { recordedFromRow } from '../store/store-input.js';
import { frozenDate } from '../events/frozen-date.js';

const EMPTY_METADATA: EventMetadata = Object.freeze({});

/** Metadata is usually empty (stored as NULL): skip the parse and share one frozen object. */
export function parseMetadata(text: string | null): EventMetadata {
  return text === null ? EMPTY_METADATA : (parseStoredJson(text) as EventMetadata);
}

/** What the metadata column stores for a prepared event's metadata JSON. */
export function metadataColumn(json: string): string | null {
  return json === '{}' ? null : json;
}

/**
 * Turns raw rows into frozen events. Rows of one append share their `recorded_at`; one Date is
 * made per distinct timestamp in the page instead of one per event.
 */
export class RowDecoder {
  private lastMs = Number.NaN;
  private lastDate = frozenDate(0);

  date(ms: number): Date {
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastDate = frozenDate(ms);
    }
    return this.lastDate;
  }

  /** Row of `position, version, type, data, metadata, event_id, recorded_at` for a known stream. */
  streamRow(streamId: string, row: StreamRow): RecordedEvent {
    return recordedFromRow(
      streamId,
      row[1],
      row[0],
      row[2],
      parseStoredJson(row[3]),
      parseMetadata(row[4]),
      row[5],
      this.date(row[6]),
    );
  }

  /** Row of `position, type, data, metadata, event_id, recorded_at`, whose version the caller knows. */
  leanRow(streamId: string, version: number, row: LeanStreamRow): RecordedEvent {
    return recordedFromRow(
      streamId,
      version,
      row[0],
      row[1],
      parseStoredJson(row[2]),
      parseMetadata(row[3]),
      row[4],
      this.date(row[5]),
    );
  }

  /** Row of `position, stream_id, version, type, data, metadata, event_id, recorded_at`. */
  logRow(row: LogRow): RecordedEvent {
    return recordedFromRow(
      row[1],
      row[2],
      row[0],
      row[3],
      parseStoredJson(row[4]),
      parseMetadata(row[5]),
      row[6],
      this.date(row[7]),
    );
  }
}

export type StreamRow = [
  position: number,
  version: number,
  type: string,
  data: string,
  metadata: string | null,
  eventId: string,
  recordedAt: number,
];
export type LeanStreamRow = [
  position: number,
  type: string,
  data: string,
  metadata: string | null,
  eventId: string,
  recordedAt: number,
];
export type LogRow = [
  position: number,
  streamId: string,
  version: number,
  type: string,
  data: string,
  metadata: string | null,
  eventId: string,
  recordedAt: number,
];
