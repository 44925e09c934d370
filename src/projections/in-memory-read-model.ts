import { InvalidArgumentError } from '../errors.js';

const DELETED = Symbol('deleted');

/** Read access to one table of an `InMemoryReadModel`. Values are frozen copies. */
export interface ReadonlyTable<T> {
  get(key: string): T | undefined;
  has(key: string): boolean;
  readonly size: number;
  keys(): string[];
  values(): T[];
  entries(): [string, T][];
}

/** A table inside a transaction: reads see the transaction's own writes. */
export interface WritableTable<T> extends ReadonlyTable<T> {
  set(key: string, value: T): void;
  delete(key: string): boolean;
  /** Empties the table. */
  clear(): void;
  /** Reads, changes and writes back one row; `update` gets undefined for a missing row. */
  upsert(key: string, update: (current: T | undefined) => T): T;
}

type Rows = Map<string, unknown>;

function freezeCopy<T>(value: T): T {
  const copy = structuredClone(value);
  return deepFreeze(copy);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function assertKey(table: string, key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`Keys of table '${table}' are strings, got ${typeof key}.`);
}

class CommittedTable<T> implements ReadonlyTable<T> {
  constructor(private readonly rows: Rows) {}
  get(key: string): T | undefined {
    return this.rows.get(key) as T | undefined;
  }
  has(key: string): boolean {
    return this.rows.has(key);
  }
  get size(): number {
    return this.rows.size;
  }
  keys(): string[] {
    return [...this.rows.keys()];
  }
  values(): T[] {
    return [...this.rows.values()] as T[];
  }
  entries(): [string, T][] {
    return [...this.rows.entries()] as [string, T][];
  }
}

/** Staged writes over a committed table: a cleared flag plus changed rows (or deletion marks). */
class StagedTable<T> implements WritableTable<T> {
  cleared = false;
  readonly changes = new Map<string, unknown>();

  constructor(
    private readonly name: string,
    private readonly committed: Rows,
    private readonly isOpen: () => boolean,
  ) {}

  private assertOpen(): void {
    if (!this.isOpen()) {
      throw new InvalidArgumentError(`Table '${this.name}' was used after its transaction ended; use the table inside the transaction.`);
    }
  }

  get(key: string): T | undefined {
    this.assertOpen();
    if (this.changes.has(key)) {
      const value = this.changes.get(key);
      return value === DELETED ? undefined : (value as T);
    }
    return this.cleared ? undefined : (this.committed.get(key) as T | undefined);
  }
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }
  get size(): number {
    return this.keys().length;
  }
  keys(): string[] {
    return this.entries().map(([key]) => key);
  }
  values(): T[] {
    return this.entries().map(([, value]) => value);
  }
  entries(): [string, T][] {
    this.assertOpen();
    const result = new Map<string, T>();
    if (!this.cleared) for (const [key, value] of this.committed) result.set(key, value as T);
    for (const [key, value] of this.changes) {
      if (value === DELETED) result.delete(key);
      else result.set(key, value as T);
    }
    return [...result.entries()];
  }
  set(key: string, value: T): void {
    this.assertOpen();
    assertKey(this.name, key);
    if (value === undefined) throw new InvalidArgumentError(`Table '${this.name}': use delete() rather than storing undefined.`);
    this.changes.set(key, freezeCopy(value));
  }
  delete(key: string): boolean {
    const existed = this.has(key);
    this.changes.set(key, DELETED);
    return existed;
  }
  clear(): void {
    this.assertOpen();
    this.cleared = true;
    this.changes.clear();
  }
  upsert(key: string, update: (current: T | undefined) => T): T {
    const next = update(this.get(key));
    this.set(key, next);
    return this.get(key)!;
  }
}

/** The writes of one `InMemoryReadModel` transaction; all of them commit or none. */
export class InMemoryReadModelTransaction {
  private readonly staged = new Map<string, StagedTable<unknown>>();
  private open = true;

  constructor(private readonly tables: Map<string, Rows>) {}

  table<T>(name: string): WritableTable<T> {
    let staged = this.staged.get(name);
    if (staged === undefined) {
      staged = new StagedTable(name, this.tables.get(name) ?? new Map(), () => this.open);
      this.staged.set(name, staged);
    }
    return staged as WritableTable<T>;
  }

  /** @internal Applies the staged writes; cannot fail halfway (plain Map operations). */
  commit(): void {
    this.open = false;
    for (const [name, staged] of this.staged) {
      let rows = this.tables.get(name);
      if (rows === undefined) {
        rows = new Map();
        this.tables.set(name, rows);
      }
      if (staged.cleared) rows.clear();
      for (const [key, value] of staged.changes) {
        if (value === DELETED) rows.delete(key);
        else rows.set(key, value);
      }
    }
  }

  /** @internal */
  discard(): void {
    this.open = false;
  }
}

/**
 * A small transactional key–value read model in memory: tables of frozen rows, written through
 * `transaction(fn)`, where every write commits when `fn` returns and none when it throws. It is
 * the in-memory projection target, for tests and prototypes.
 */
export class InMemoryReadModel {
  private readonly tables = new Map<string, Rows>();
  private active = false;

  /** The committed rows of a table (empty when never written). */
  table<T>(name: string): ReadonlyTable<T> {
    let rows = this.tables.get(name);
    if (rows === undefined) {
      rows = new Map();
      this.tables.set(name, rows);
    }
    return new CommittedTable<T>(rows);
  }

  /** Runs `fn` synchronously; its writes commit together when it returns, and vanish when it throws. */
  transaction<R>(fn: (tx: InMemoryReadModelTransaction) => R): R {
    if (this.active) throw new InvalidArgumentError('InMemoryReadModel transactions do not nest; use the transaction you were given.');
    this.active = true;
    const tx = new InMemoryReadModelTransaction(this.tables);
    try {
      const result = fn(tx);
      if (typeof (result as { then?: unknown } | undefined)?.then === 'function') {
        throw new InvalidArgumentError('InMemoryReadModel transactions are synchronous; the function returned a promise.');
      }
      tx.commit();
      return result;
    } catch (error) {
      tx.discard();
      throw error;
    } finally {
      this.active = false;
    }
  }
}
