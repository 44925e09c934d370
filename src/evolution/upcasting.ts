import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent, EventMetadata, RecordedEvent } from '../events/types.js';
import { deepFreezeJson } from '../events/validation.js';
import type { EventStore, ReadAllOptions } from '../store/event-store.js';
import { PagedEventStream, type EventStream } from '../store/event-stream.js';
import { EventStoreDecorator } from '../store/decorator.js';
import { UpcastError } from './errors.js';

/** Reserved metadata key holding the schema version an event was written in. Absent means 1. */
export const SCHEMA_VERSION_KEY = '$schemaVersion';
/**
 * Reserved metadata key on the 2nd, 3rd, … pieces of an event that an upcaster split: the piece's
 * index (1-based after the first). All pieces keep the stored event's version and position.
 */
export const SPLIT_PART_KEY = '$splitPart';

/** What a step produces: one or more events of the next schema version. */
export interface UpcastedEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
}

type Step = (data: unknown, event: RecordedEvent) => readonly UpcastedEvent[];

interface Pending {
  readonly type: string;
  readonly data: unknown;
  readonly schemaVersion: number;
}

/** The schema version recorded on a stored event (1 when it carries none). */
export function schemaVersionOf(event: { readonly metadata?: EventMetadata | undefined }): number {
  const version = event.metadata?.[SCHEMA_VERSION_KEY];
  return typeof version === 'number' && Number.isSafeInteger(version) && version >= 1 ? version : 1;
}

/** Most steps one stored event may take: a guard against an upcaster that splits without end. */
const MAX_STEPS = 1000;

/**
 * A registry of upcasters: for each event type and schema version, how to turn an event of that
 * version into the next one. Chains compose (v1 → v2 → v3), a type can be renamed (`rename`), and
 * one event can become several (`split`). Each step moves the schema version up by one, so a chain
 * always ends; a renamed type continues its predecessor's numbering.
 *
 * An event's current version is the highest version any step produces for its type (1 when none):
 * new events are written with it, and reading stops there.
 */
export class Upcasters {
  private readonly steps = new Map<string, Map<number, Step>>();
  private readonly latest = new Map<string, number>();
  /** Which types each type's steps produce: to find the stored types a read filter must ask for. */
  private readonly produced = new Map<string, Set<string>>();

  /** `type` at `fromVersion` becomes `type` at `fromVersion + 1` with `upcast(data)` as its data. */
  upcast<Old = unknown, New = unknown>(type: string, fromVersion: number, upcast: (data: Old, event: RecordedEvent) => New): this {
    if (typeof upcast !== 'function') throw new InvalidArgumentError(`upcast('${type}', ${fromVersion}, fn): fn must be a function.`);
    return this.add(type, fromVersion, [type], (data, event) => [{ type, data: upcast(data as Old, event) }]);
  }

  /** `fromType` at `fromVersion` becomes `toType` at `fromVersion + 1`, its data unchanged or transformed. */
  rename<Old = unknown, New = Old>(
    fromType: string,
    fromVersion: number,
    toType: string,
    transform?: (data: Old, event: RecordedEvent) => New,
  ): this {
    assertType(toType);
    return this.add(fromType, fromVersion, [toType], (data, event) => [
      { type: toType, data: transform === undefined ? data : transform(data as Old, event) },
    ]);
  }

  /**
   * `type` at `fromVersion` becomes the events `split` returns, each at `fromVersion + 1` (an empty
   * array drops the event). `produces` names the types it may return, so their current versions
   * are known before any event is read.
   */
  split<Old = unknown>(
    type: string,
    fromVersion: number,
    produces: readonly string[],
    split: (data: Old, event: RecordedEvent) => readonly UpcastedEvent[],
  ): this {
    if (!Array.isArray(produces) || produces.length === 0) {
      throw new InvalidArgumentError(`split('${type}', ${fromVersion}, produces, fn): name the event types it produces.`);
    }
    for (const t of produces) assertType(t);
    return this.add(type, fromVersion, produces, (data, event) => {
      const out = split(data as Old, event);
      if (!Array.isArray(out)) throw new TypeError('a split upcaster must return an array of { type, data }');
      for (const e of out) {
        if (typeof e !== 'object' || e === null || !produces.includes(e.type)) {
          throw new TypeError(`a split upcaster returned an event whose type is not one of ${JSON.stringify(produces)}`);
        }
      }
      return out;
    });
  }

  /** The schema version new events of `type` are written in. */
  currentVersion(type: string): number {
    return this.latest.get(type) ?? 1;
  }

  /** True when at least one upcaster is registered. */
  get isEmpty(): boolean {
    return this.steps.size === 0;
  }

  /**
   * `event` with the current schema version of its type recorded. Always this registry's: a
   * version the caller put in the metadata would make readers upcast a current event.
   */
  stamp<E extends AnyEvent>(event: E): E & { readonly metadata: EventMetadata } {
    return { ...event, metadata: { ...event.metadata, [SCHEMA_VERSION_KEY]: this.currentVersion(event.type) } };
  }

  /**
   * The stored event in its current shape: itself when no step applies, else one or more new
   * recorded events with the same stream, version, position and time. The first piece keeps the
   * event id; later pieces of a split get ids derived from it (stable across reads).
   */
  upcastEvent(event: RecordedEvent): readonly RecordedEvent[] {
    const byVersion = this.steps.get(event.type);
    const stored = schemaVersionOf(event);
    if (byVersion === undefined || !byVersion.has(stored)) return [event];
    const done: Pending[] = [];
    const todo: Pending[] = [{ type: event.type, data: event.data, schemaVersion: stored }];
    let steps = 0;
    while (todo.length > 0) {
      const item = todo.shift()!;
      const step = this.steps.get(item.type)?.get(item.schemaVersion);
      if (step === undefined) {
        done.push(item);
        continue;
      }
      if (++steps > MAX_STEPS) throw new UpcastError(event.type, stored, event.position, new Error(`more than ${MAX_STEPS} upcasting steps`));
      let produced: readonly UpcastedEvent[];
      try {
        produced = step(item.data, event);
      } catch (error) {
        throw new UpcastError(item.type, item.schemaVersion, event.position, error);
      }
      // Depth first, in order: the pieces of a split keep their relative order.
      todo.unshift(...produced.map((p) => ({ type: p.type, data: p.data, schemaVersion: item.schemaVersion + 1 })));
    }
    return done.map((item, index) => {
      const metadata: Record<string, unknown> = { ...event.metadata, [SCHEMA_VERSION_KEY]: item.schemaVersion };
      if (index > 0) metadata[SPLIT_PART_KEY] = index;
      return deepFreezeJson({
        type: item.type,
        data: item.data,
        metadata,
        streamId: event.streamId,
        version: event.version,
        position: event.position,
        eventId: index === 0 ? event.eventId : derivedId(event.eventId, index),
        recordedAt: event.recordedAt,
      }) as RecordedEvent;
    });
  }

  /**
   * The stored types that can be read as one of `types`: the types themselves and every type whose
   * steps lead to one of them (a renamed or split predecessor).
   */
  storedTypesOf(types: readonly string[]): string[] {
    const found = new Set(types);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [source, targets] of this.produced) {
        if (found.has(source)) continue;
        for (const target of targets) {
          if (found.has(target)) {
            found.add(source);
            grew = true;
            break;
          }
        }
      }
    }
    return [...found];
  }

  /** Upcasts a page; the same array when nothing in it needed upcasting. */
  upcastPage(page: readonly RecordedEvent[]): readonly RecordedEvent[] {
    if (this.steps.size === 0) return page;
    let out: RecordedEvent[] | undefined;
    for (let i = 0; i < page.length; i++) {
      const event = page[i]!;
      const upcasted = this.upcastEvent(event);
      if (out === undefined) {
        if (upcasted.length === 1 && upcasted[0] === event) continue;
        out = page.slice(0, i);
      }
      for (const e of upcasted) out.push(e);
    }
    return out ?? page;
  }

  private add(type: string, fromVersion: number, produces: readonly string[], step: Step): this {
    assertType(type);
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
      throw new InvalidArgumentError(`Upcaster for '${type}': fromVersion must be an integer >= 1, got ${String(fromVersion)}.`);
    }
    let byVersion = this.steps.get(type);
    if (byVersion === undefined) {
      byVersion = new Map();
      this.steps.set(type, byVersion);
    }
    if (byVersion.has(fromVersion)) {
      throw new InvalidArgumentError(`An upcaster for '${type}' version ${fromVersion} is already registered.`);
    }
    byVersion.set(fromVersion, step);
    let produced = this.produced.get(type);
    if (produced === undefined) {
      produced = new Set();
      this.produced.set(type, produced);
    }
    for (const t of produces) produced.add(t);
    for (const t of produces) this.latest.set(t, Math.max(this.latest.get(t) ?? 1, fromVersion + 1));
    this.latest.set(type, Math.max(this.latest.get(type) ?? 1, fromVersion + (produces.includes(type) ? 1 : 0)));
    return this;
  }
}

function assertType(type: unknown): asserts type is string {
  if (typeof type !== 'string' || type.length === 0) throw new InvalidArgumentError('An upcaster needs a non-empty event type.');
}

/** A UUID-shaped id derived from `eventId` and the piece index: the same on every read. */
function derivedId(eventId: string, index: number): string {
  const h = createHash('sha256').update(`${eventId}/${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Records each new event's schema version and upcasts every event read, on every read path
 * (`readStream`, `readAll`, subscriptions and projection runners reading through it, Repository
 * loads, time travel). Works over any `EventStore`.
 */
export class UpcastingEventStore extends EventStoreDecorator {
  constructor(
    inner: EventStore,
    readonly upcasters: Upcasters,
  ) {
    super(inner);
  }

  protected override encode(_streamId: string, events: readonly AnyEvent[]): readonly AnyEvent[] {
    return events.map((e) => this.upcasters.stamp(e));
  }

  protected override decode(page: readonly RecordedEvent[]): readonly RecordedEvent[] {
    return this.upcasters.upcastPage(page);
  }

  /**
   * A type filter names current types; the store filters stored ones. So the store is asked for
   * the requested types and their predecessors, and the upcast events are filtered again.
   * `limit` then counts stored events.
   */
  override readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    const types = options?.filter?.types;
    if (types === undefined || !Array.isArray(types) || this.upcasters.isEmpty) return super.readAll(options);
    const wanted = new Set(types);
    const stream = this.inner.readAll({ ...options, filter: { ...options!.filter, types: this.upcasters.storedTypesOf(types) } });
    const upcasters = this.upcasters;
    return new PagedEventStream(async function* () {
      for await (const page of stream.pages()) {
        const kept = upcasters.upcastPage(page).filter((e) => wanted.has(e.type));
        if (kept.length > 0) yield kept;
      }
    });
  }
}
