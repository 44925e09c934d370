import { isDeepStrictEqual } from 'node:util';
import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { SCHEMA_VERSION_KEY, type UpcastedEvent, type Upcasters } from '../evolution/upcasting.js';

/** An event as an old build stored it: its type, data and schema version (default 1). */
export interface StoredEventFixture {
  readonly type: string;
  readonly data: unknown;
  readonly schemaVersion?: number;
  readonly metadata?: EventMetadata;
}

export interface UpcastCase {
  /** A name for the failure message, e.g. the fixture file. */
  readonly name?: string;
  readonly stored: StoredEventFixture;
  /** What readers must see: usually one event, several for a split, none for a dropped event. */
  readonly expected: readonly UpcastedEvent[];
}

/** Thrown by `assertUpcasts` with every case that did not upcast as expected. */
export class UpcastAssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpcastAssertionError';
  }
}

/** A recorded event built from a fixture, at version 1 and position 1 of stream `fixture`. */
export function recordedFixture(fixture: StoredEventFixture): RecordedEvent {
  return {
    type: fixture.type,
    data: fixture.data,
    metadata: { ...fixture.metadata, [SCHEMA_VERSION_KEY]: fixture.schemaVersion ?? 1 },
    streamId: 'fixture',
    version: 1,
    position: 1,
    eventId: '00000000-0000-4000-8000-000000000001',
    recordedAt: new Date(0),
  } as RecordedEvent;
}

/**
 * Asserts that `upcasters` turn each stored fixture (for example JSON files of events as an old
 * build stored them) into the expected current events, and that the result is already current
 * (upcasting it again changes nothing). Framework-agnostic: throws `UpcastAssertionError`.
 */
export function assertUpcasts(upcasters: Upcasters, cases: readonly UpcastCase[]): void {
  const failures: string[] = [];
  cases.forEach((c, i) => {
    const label = c.name ?? `case #${i} (${c.stored.type} v${c.stored.schemaVersion ?? 1})`;
    let actual: readonly RecordedEvent[];
    try {
      actual = upcasters.upcastEvent(recordedFixture(c.stored));
    } catch (error) {
      failures.push(`${label}: upcasting threw ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const seen = actual.map((e) => ({ type: e.type, data: e.data }));
    const wanted = c.expected.map((e) => ({ type: e.type, data: e.data }));
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(seen)), JSON.parse(JSON.stringify(wanted)))) {
      failures.push(`${label}: expected ${JSON.stringify(wanted)} but got ${JSON.stringify(seen)}`);
      return;
    }
    for (const e of actual) {
      const again = upcasters.upcastEvent(e);
      if (again.length !== 1 || again[0] !== e) failures.push(`${label}: '${e.type}' is not at its current version after upcasting`);
    }
  });
  if (failures.length > 0) throw new UpcastAssertionError(`${failures.length} upcast case(s) failed:\n- ${failures.join('\n- ')}`);
}
