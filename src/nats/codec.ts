import type { MsgHdrs } from '@nats-io/transport-node';
import { frozenDate } from '../events/frozen-date.js';
import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { deepFreezeJson, type PreparedEvent } from '../events/validation.js';
import { recordedFromRow } from '../store/store-input.js';

/**
 * One append is one JetStream message on the stream's subject, carrying the whole batch:
 *
 * - payload (JSON): `{"s": streamId, "v": firstVersion, "t": recordedAtMs, "e": [[eventId, type, data, metadata], …]}`
 * - `Eventfold-Version`: the stream's version after this append (its last event's version)
 * - `Eventfold-Count`: the number of events in the message
 * - `Eventfold-Prev`: the stream sequence of the stream's previous message (0 for its first)
 * - `Nats-Msg-Id`: the first event's id (publish deduplication)
 * - `Nats-Expected-Last-Subject-Sequence`: `Eventfold-Prev`, checked by the server.
 *
 * A message at stream sequence `seq` holds positions `seq * POSITION_STRIDE + i` for its events
 * `i = 0, 1, …`, so positions grow with the log, and a position names its message.
 */
export const POSITION_STRIDE = 10_000;

export const VERSION_HEADER = 'Eventfold-Version';
export const COUNT_HEADER = 'Eventfold-Count';
export const PREV_HEADER = 'Eventfold-Prev';
/** On a pruning marker (a message of no events, see pruning.ts): the log's last position when it was written. */
export const LOG_HEAD_HEADER = 'Eventfold-Log-Head';

/** What the headers of a stream's message say, without parsing its payload. */
export interface MessageHead {
  readonly seq: number;
  /** Version of the message's last event. */
  readonly version: number;
  readonly count: number;
  /** Sequence of the stream's previous message, 0 for the first. */
  readonly prev: number;
  /** Only on a pruning marker (`count` 0): the log's last position when the marker was written. */
  readonly logHead?: number;
}

/** The position of the log's last event, given the log's last message. */
export function lastPositionOf(head: MessageHead): number {
  return head.count === 0 ? (head.logHead ?? 0) : head.seq * POSITION_STRIDE + head.count - 1;
}

export function firstVersionOf(head: MessageHead): number {
  return head.version - head.count + 1;
}

export function encodePayload(
  streamId: string,
  firstVersion: number,
  recordedAtMs: number,
  events: readonly PreparedEvent[],
  eventIds: readonly string[],
): string {
  let json = `{"s":${JSON.stringify(streamId)},"v":${firstVersion},"t":${recordedAtMs},"e":[`;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (i > 0) json += ',';
    json += `[${JSON.stringify(eventIds[i])},${JSON.stringify(event.type)},${event.dataJson},${event.metadataJson}]`;
  }
  return `${json}]}`;
}

export class CorruptMessageError extends Error {}

export function headOf(seq: number, headers: MsgHdrs | undefined): MessageHead {
  const version = Number(headers?.get(VERSION_HEADER));
  const count = Number(headers?.get(COUNT_HEADER));
  const prev = Number(headers?.get(PREV_HEADER));
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(count) || !Number.isSafeInteger(prev) || count < 0) {
    throw new CorruptMessageError(`message ${seq} lacks eventfold headers: it was not written by eventfold`);
  }
  if (count === 0) {
    // A pruning marker stands in for a rewritten last message; it carries no events.
    const logHead = Number(headers?.get(LOG_HEAD_HEADER));
    if (!Number.isSafeInteger(logHead) || logHead < 0) throw new CorruptMessageError(`message ${seq} is a marker without ${LOG_HEAD_HEADER}`);
    return { seq, version, count, prev, logHead };
  }
  return { seq, version, count, prev };
}

const EMPTY_METADATA: EventMetadata = Object.freeze({});
const decoder = new TextDecoder();

interface Payload {
  s: string;
  v: number;
  t: number;
  e: [string, string, unknown, EventMetadata][];
}

/** The frozen events of one message, in version order. */
let lastMs = Number.NaN;
let lastDate = frozenDate(0);

export function decodeEvents(seq: number, data: Uint8Array): RecordedEvent[] {
  const payload = JSON.parse(decoder.decode(data)) as Payload;
  // Messages of one busy millisecond share one (immutable) Date.
  if (payload.t !== lastMs) {
    lastMs = payload.t;
    lastDate = frozenDate(payload.t);
  }
  const recordedAt = lastDate;
  const out = new Array<RecordedEvent>(payload.e.length);
  const base = seq * POSITION_STRIDE;
  for (let i = 0; i < payload.e.length; i++) {
    const [eventId, type, data, metadata] = payload.e[i]!;
    const frozenMeta = isEmpty(metadata) ? EMPTY_METADATA : deepFreezeJson(metadata);
    out[i] = recordedFromRow(payload.s, payload.v + i, base + i, type, deepFreezeJson(data), frozenMeta, eventId, recordedAt);
  }
  return out;
}

function isEmpty(metadata: EventMetadata): boolean {
  for (const _ in metadata) return false;
  return true;
}
