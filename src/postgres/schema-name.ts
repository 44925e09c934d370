import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_POSTGRES_SCHEMA = 'eventfold';

/**
 * Lower-case letters, digits and underscores, starting with a letter or underscore, at most 53
 * characters: always a valid unquoted identifier, and `eventfold_<schema>` (the NOTIFY channel)
 * still fits PostgreSQL's 63-byte identifier limit.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,52}$/;

/** Checks a configurable schema name; the name is still always quoted where it is used. */
export function assertValidSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new InvalidArgumentError(
      `Invalid PostgreSQL schema name ${JSON.stringify(schema) ?? String(schema)}: use 1 to 53 lower-case ` +
        `letters, digits or underscores, starting with a letter or underscore (e.g. 'eventfold').`,
    );
  }
  if (schema.startsWith('pg_')) {
    throw new InvalidArgumentError(`Invalid PostgreSQL schema name '${schema}': names starting with 'pg_' are reserved.`);
  }
}

/** Double-quotes a validated identifier (the regex admits no quote, so no escaping is needed). */
export function quoteIdentifier(name: string): string {
  return `"${name}"`;
}

/** NOTIFY channel every append in the schema signals (payload: the append's last position). */
export function notifyChannel(schema: string): string {
  return `eventfold_${schema}`;
}

/**
 * Advisory-lock keys. The first key names the purpose, the second the schema (a 31-bit FNV-1a
 * hash of its name), so two schemas in one database do not contend. A hash collision between two
 * schemas only makes them share locks: slower, never incorrect.
 */
export const LOCK_CLASS = Object.freeze({
  /** Session lock held for microseconds while an append takes its xid and positions. */
  position: 0x45460001,
  /** Shared transaction lock every appending transaction holds until it ends (readers look for it). */
  writer: 0x45460002,
  /** Serialises concurrent migrate() calls. */
  migrate: 0x45460003,
});

export function schemaLockKey(schema: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < schema.length; i++) {
    hash ^= schema.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash & 0x7fffffff;
}

/**
 * Classids of the per-stream advisory locks of a schema: bits 29-30 keep them apart from
 * LOCK_CLASS (bit 30 set) and from each other, the rest is the schema's hash.
 */
export function streamLockClasses(schema: string): { readonly stream: number; readonly bucket: number } {
  const base = schemaLockKey(schema) & 0x1fffffff;
  return { stream: base, bucket: base | 0x20000000 };
}
