import type { RecordedEvent } from '../../events/types.js';
import type { AggregateView } from '../config.js';
import { diffJson, type JsonChange } from './diff.js';

/** Makes a value JSON-safe for display: Maps and Sets become objects and arrays, Dates ISO text. */
export function toJsonSafe(value: unknown, depth = 0): unknown {
  if (depth > 50) return '[too deep]';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = toJsonSafe(v, depth + 1);
    return out;
  }
  if (value instanceof Set) return [...value].map((v) => toJsonSafe(v, depth + 1));
  if (Array.isArray(value)) return value.map((v) => toJsonSafe(v, depth + 1) ?? null);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const safe = toJsonSafe(v, depth + 1);
    if (safe !== undefined) out[k] = safe;
  }
  return out;
}

/** The view whose `streamPrefix` matches the stream (`<prefix>-<id>`); the longest prefix wins. */
export function viewFor(views: readonly AggregateView[], streamId: string): AggregateView | undefined {
  let best: AggregateView | undefined;
  for (const view of views) {
    if (streamId.startsWith(`${view.streamPrefix}-`) && (best === undefined || view.streamPrefix.length > best.streamPrefix.length)) {
      best = view;
    }
  }
  return best;
}

/** The state of the stream's aggregate after its first `events.length` events. */
export function stateAfter(view: AggregateView, streamId: string, events: readonly RecordedEvent[]): unknown {
  if ('evolve' in view) {
    let state = view.initialState();
    for (const event of events) state = view.evolve(state, event);
    return toJsonSafe(state);
  }
  const id = streamId.slice(view.streamPrefix.length + 1);
  const aggregate = view.aggregate.fromEvents(id, events) as Record<string, unknown> & { toSnapshot?: () => unknown };
  if (view.state !== undefined) return toJsonSafe(view.state(aggregate));
  if (typeof aggregate.toSnapshot === 'function') return toJsonSafe(aggregate.toSnapshot());
  const { id: _id, ...fields } = aggregate;
  void _id;
  return toJsonSafe(fields);
}

export interface TimeTravelFrame {
  readonly streamId: string;
  readonly aggregate: string;
  readonly version: number;
  readonly state: unknown;
  readonly previousState: unknown;
  readonly changes: readonly JsonChange[];
}

/** The state at `version` (0 = before the first event), the state one event before, and the diff. */
export function timeTravel(view: AggregateView, streamId: string, events: readonly RecordedEvent[], version: number): TimeTravelFrame {
  const upTo = events.slice(0, version);
  const state = stateAfter(view, streamId, upTo);
  const previousState = version === 0 ? null : stateAfter(view, streamId, upTo.slice(0, version - 1));
  return {
    streamId,
    aggregate: view.streamPrefix,
    version,
    state,
    previousState,
    changes: version === 0 ? [] : diffJson(previousState, state),
  };
}
