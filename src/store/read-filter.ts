import { InvalidArgumentError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import type { ReadAllFilter } from './event-store.js';

/** Most entries in each list of a `ReadAllFilter`. */
export const MAX_FILTER_ENTRIES = 100;

/** A validated filter: each list de-duplicated, undefined when it does not restrict anything. */
export interface ResolvedReadAllFilter {
  readonly types: readonly string[] | undefined;
  readonly categories: readonly string[] | undefined;
}

/** The stream's category: the part of its id before the first `-` (`user-42` → `user`), or the whole id. */
export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash === -1 ? streamId : streamId.slice(0, dash);
}

function resolveList(name: string, list: unknown): readonly string[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_FILTER_ENTRIES) {
    throw new InvalidArgumentError(`filter.${name} must be a non-empty array of at most ${MAX_FILTER_ENTRIES} strings, got ${JSON.stringify(list) ?? String(list)}.`);
  }
  for (const entry of list) {
    if (typeof entry !== 'string' || entry.length === 0 || entry.length > 200) {
      throw new InvalidArgumentError(`filter.${name} entries must be strings of 1-200 characters, got ${JSON.stringify(entry) ?? String(entry)}.`);
    }
  }
  return Object.freeze([...new Set(list as string[])]);
}

/** Validates a filter; a missing filter (or one with neither list) is undefined: read everything. */
export function resolveReadAllFilter(filter: ReadAllFilter | undefined): ResolvedReadAllFilter | undefined {
  if (filter === undefined) return undefined;
  if (typeof filter !== 'object' || filter === null) {
    throw new InvalidArgumentError('filter must be an object { types?, categories? }.');
  }
  const types = resolveList('types', filter.types);
  const categories = resolveList('categories', filter.categories);
  if (types === undefined && categories === undefined) return undefined;
  return Object.freeze({ types, categories });
}

/** True when the event passes the filter (for stores that filter in the client). */
export function matchesFilter(event: RecordedEvent, filter: ResolvedReadAllFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  if (filter.categories !== undefined && !filter.categories.includes(categoryOf(event.streamId))) return false;
  return true;
}
