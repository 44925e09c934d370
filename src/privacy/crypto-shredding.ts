import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent, EventData, EventType, JsonValue, RecordedEvent } from '../events/types.js';
import { deepFreezeJson } from '../events/validation.js';
import { checkAppendManyShape, checkAppendShape, EventStoreDecorator } from '../store/decorator.js';
import { defineProjection, type Projection, type ProjectionHandler } from '../projections/projection.js';
import type { AppendOptions, AppendResult, EventStore, StreamAppend } from '../store/event-store.js';
import { decryptValue, encryptValue, isEnvelope } from './cipher.js';
import { EncryptionKeyMissingError } from './errors.js';
import { assertValidSubjectId, type KeyStore, type SubjectKey } from './key-store.js';

/** Reserved metadata key: the paths of `data` that hold encrypted personal data. */
export const PERSONAL_PATHS_KEY = '$personal';
/** Reserved metadata key set on read: the paths whose subject was forgotten and are redacted. */
export const REDACTED_PATHS_KEY = '$redacted';

/** Which fields of one event type are personal, and whose they are. */
export interface PersonalFields<Data> {
  /** The data subject the fields belong to (usually the user id), from the data or the stream id. */
  readonly subject: (data: Data, streamId: string) => string;
  /** Dot paths into `data`: `'email'`, `'address.street'`. Arrays are encrypted as one value. */
  readonly fields: readonly string[];
  /** What a forgotten field reads as. Default `null`. */
  readonly redacted?: JsonValue;
}

/** Personal fields per event type of the union `E`. */
export type PersonalDataPolicy<E extends AnyEvent = AnyEvent> = {
  readonly [T in EventType<E>]?: PersonalFields<EventData<E, T>>;
};

/** Checks and returns a typed personal-data policy. */
export function definePersonalData<E extends AnyEvent>(policy: PersonalDataPolicy<E>): PersonalDataPolicy<E> {
  for (const [type, fields] of Object.entries(policy) as [string, PersonalFields<unknown> | undefined][]) {
    if (fields === undefined) continue;
    if (typeof fields.subject !== 'function' || !Array.isArray(fields.fields) || fields.fields.length === 0) {
      throw new InvalidArgumentError(`Personal data of '${type}' needs { subject: (data) => id, fields: ['path', …] }.`);
    }
    for (const path of fields.fields) {
      if (typeof path !== 'string' || path.length === 0 || path.split('.').some((p) => p.length === 0)) {
        throw new InvalidArgumentError(`Personal data of '${type}': '${String(path)}' is not a dot path.`);
      }
    }
  }
  return policy;
}

type Json = { [key: string]: unknown };

function getAt(data: unknown, path: string): unknown {
  let current = data;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, key)) return undefined;
    current = (current as Json)[key];
  }
  return current;
}

/** A copy of `data` with the value at `path` replaced (the objects along the path are copied). */
function setAt(data: unknown, path: string, value: unknown): unknown {
  const [key, ...rest] = path.split('.');
  const copy: Json = { ...(data as Json) };
  copy[key!] = rest.length === 0 ? value : setAt(copy[key!], rest.join('.'), value);
  return copy;
}

/**
 * Crypto-shredding: personal fields are encrypted per data subject (AES-256-GCM, a fresh IV per
 * value) before they are stored, and decrypted on every read. `forget(subjectId)` deletes the
 * subject's key: from then on every read path (streams, `readAll`, projections and their rebuilds,
 * Repository loads, time travel) shows those fields as the policy's `redacted` value (default
 * `null`) and lists them under `metadata.$redacted`, while the events, their versions and
 * positions stay as they are. Place it innermost (right over the durable store) so upcasters and
 * validation see plain values.
 */
export class CryptoShreddingEventStore<E extends AnyEvent = AnyEvent> extends EventStoreDecorator {
  constructor(
    inner: EventStore,
    readonly keys: KeyStore,
    private readonly policy: PersonalDataPolicy<E>,
  ) {
    super(inner);
    definePersonalData(policy);
  }

  /**
   * Keys of the appends under way, so inline projections (which run inside the inner store's
   * append, synchronously on SQLite) can decrypt what is being appended. Held only for the
   * duration of an append: no key outlives its use in memory here.
   */
  private readonly appending = new Map<string, { readonly key: Buffer; refs: number }>();

  /** Deletes the subject's key: its personal data becomes unreadable everywhere, for good. */
  forget(subjectId: string): Promise<void> {
    assertValidSubjectId(subjectId);
    return this.keys.forget(subjectId);
  }

  override async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    checkAppendShape(events, options);
    const held = await this.hold([{ streamId, events, expectedVersion: options.expectedVersion }]);
    try {
      return await super.append(streamId, events, options);
    } finally {
      this.release(held);
    }
  }

  override async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    checkAppendManyShape(appends);
    const held = await this.hold(appends);
    try {
      return await super.appendMany(appends);
    } finally {
      this.release(held);
    }
  }

  /**
   * The projection with its handlers fed decrypted events, for inline projections registered on
   * the inner store (`addInlineSqliteProjection(raw, privacy.inlineProjection(p))`): they run
   * inside appends made through this layer and see plain values. Async runners read through the
   * layer itself instead.
   */
  inlineProjection<P extends AnyEvent, Ctx>(projection: Projection<P, Ctx>): Projection<P, Ctx> {
    const handlers: Record<string, ProjectionHandler<AnyEvent, Ctx>> = {};
    for (const [type, handler] of Object.entries(projection.handlers as Record<string, ProjectionHandler<AnyEvent, Ctx> | undefined>)) {
      if (handler !== undefined) handlers[type] = (event, ctx) => handler(this.decodeHeld(event), ctx);
    }
    return defineProjection<P, Ctx>({
      name: projection.name,
      version: projection.version,
      unknownEvents: projection.unknownEvents,
      handlers: handlers as never,
      ...(projection.any === undefined ? {} : { any: wrapAny(projection.any, (event) => this.decodeHeld(event)) }),
      ...(projection.setup === undefined ? {} : { setup: projection.setup }),
      ...(projection.reset === undefined ? {} : { reset: projection.reset }),
    });
  }

  private async hold(appends: readonly StreamAppend[]): Promise<string[]> {
    const subjects: string[] = [];
    for (const a of appends) {
      for (const event of a.events) {
        const fields = this.fieldsOf(event?.type);
        if (fields === undefined) continue;
        const subject = fields.subject(event.data, a.streamId);
        assertValidSubjectId(subject);
        const entry = this.appending.get(subject);
        if (entry !== undefined) {
          entry.refs++;
        } else {
          const key = await this.keys.keyFor(subject);
          const raced = this.appending.get(subject);
          if (raced !== undefined) raced.refs++;
          else this.appending.set(subject, { key, refs: 1 });
        }
        subjects.push(subject);
      }
    }
    return subjects;
  }

  private release(subjects: readonly string[]): void {
    for (const subject of subjects) {
      const entry = this.appending.get(subject);
      if (entry !== undefined && --entry.refs === 0) this.appending.delete(subject);
    }
  }

  private decodeHeld(event: RecordedEvent): RecordedEvent {
    const keys = new Map<string, SubjectKey>();
    for (const path of personalPathsOf(event)) {
      const value = getAt(event.data, path);
      if (!isEnvelope(value)) continue;
      const held = this.appending.get(value.s);
      if (held === undefined) {
        throw new Error(
          `inline projection: event at position ${event.position} was not appended through this crypto-shredding layer, so its keys are not at hand`,
        );
      }
      keys.set(value.s, { status: 'active', key: held.key });
    }
    return this.decodeEvent(event, keys);
  }

  private fieldsOf(type: unknown): PersonalFields<unknown> | undefined {
    return typeof type === 'string' && Object.hasOwn(this.policy, type)
      ? (this.policy as { readonly [type: string]: PersonalFields<unknown> | undefined })[type]
      : undefined;
  }

  protected override async encode(streamId: string, events: readonly AnyEvent[]): Promise<readonly AnyEvent[]> {
    const out: AnyEvent[] = [];
    for (const event of events) {
      const fields = this.fieldsOf(event?.type);
      // Always by the policy: metadata or data that claim to be encrypted already are not trusted.
      if (fields === undefined) {
        out.push(unmarked(event));
        continue;
      }
      const subject = fields.subject(event.data, streamId);
      assertValidSubjectId(subject);
      const present = fields.fields.filter((path) => getAt(event.data, path) !== undefined);
      if (present.length === 0) {
        out.push(unmarked(event));
        continue;
      }
      const key = this.appending.get(subject)?.key ?? (await this.keys.keyFor(subject));
      let data: unknown = event.data;
      for (const path of present) data = setAt(data, path, encryptValue(key, subject, path, getAt(event.data, path) as JsonValue));
      out.push({ type: event.type, data, metadata: { ...event.metadata, [PERSONAL_PATHS_KEY]: present } });
    }
    return out;
  }

  protected override async decode(page: readonly RecordedEvent[]): Promise<readonly RecordedEvent[]> {
    const subjects = new Set<string>();
    for (const event of page) {
      for (const path of personalPathsOf(event)) {
        const value = getAt(event.data, path);
        if (isEnvelope(value)) subjects.add(value.s);
      }
    }
    if (subjects.size === 0) return page;
    const keys = await this.keys.lookup([...subjects]);
    return page.map((event) => this.decodeEvent(event, keys));
  }

  private decodeEvent(event: RecordedEvent, keys: ReadonlyMap<string, SubjectKey>): RecordedEvent {
    const paths = personalPathsOf(event);
    if (paths.length === 0) return event;
    const fields = this.fieldsOf(event.type);
    let data: unknown = event.data;
    const redacted: string[] = [];
    for (const path of paths) {
      const envelope = getAt(event.data, path);
      if (!isEnvelope(envelope)) continue;
      const key = keys.get(envelope.s);
      if (key === undefined) throw new EncryptionKeyMissingError(envelope.s);
      if (key.status === 'forgotten') {
        data = setAt(data, path, fields?.redacted ?? null);
        redacted.push(path);
      } else {
        data = setAt(data, path, decryptValue(key.key, envelope, path));
      }
    }
    const metadata = redacted.length === 0 ? event.metadata : { ...event.metadata, [REDACTED_PATHS_KEY]: redacted };
    return deepFreezeJson({ ...event, data, metadata }) as RecordedEvent;
  }
}

/** The event without a `$personal` mark it brought itself (readers would try to decrypt those paths). */
function unmarked(event: AnyEvent): AnyEvent {
  const metadata = event?.metadata as unknown;
  // Not an object: the store below refuses it with its own typed error.
  if (typeof metadata !== 'object' || metadata === null || !(PERSONAL_PATHS_KEY in metadata)) return event;
  const { [PERSONAL_PATHS_KEY]: _dropped, ...rest } = metadata as { [key: string]: unknown };
  return { ...event, metadata: rest };
}

function wrapAny<P extends AnyEvent, Ctx>(
  any: ProjectionHandler<P, Ctx>,
  decode: (event: RecordedEvent) => RecordedEvent,
): ProjectionHandler<P, Ctx> {
  return (event, ctx) => any(decode(event as RecordedEvent) as typeof event, ctx);
}

function personalPathsOf(event: RecordedEvent): readonly string[] {
  const paths = (event.metadata as { readonly [k: string]: unknown })[PERSONAL_PATHS_KEY];
  // Stored metadata is untrusted: a path through '__proto__' would reach Object.prototype.
  return Array.isArray(paths)
    ? paths.filter((p): p is string => typeof p === 'string' && !p.split('.').some((k) => k === '__proto__'))
    : [];
}
