import { CheckpointConflictError } from './errors.js';
import { assertValidProjectionName } from './projection.js';
import type { StoredRunnerError } from './runner-error.js';
import type { Checkpoint } from './target.js';

/**
 * Stores checkpoints on their own (outside a read model's transaction). Adapters offer the same
 * table inside their database; a runner whose read model lives elsewhere pairs one of these with
 * `AtLeastOnceTarget`.
 */
export interface CheckpointStore {
  load(projection: string): Promise<Checkpoint | undefined>;
  /** Writes `next` if the stored checkpoint is `expected`; else throws `CheckpointConflictError`. */
  save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void>;
  delete(projection: string): Promise<void>;
  /** Every stored checkpoint, by projection name (for status tools). Optional for custom stores. */
  list?(): Promise<StoredCheckpoint[]>;
  /** Stores a runner's last fault beside its checkpoint (`undefined` clears it). Optional for custom stores. */
  saveError?(projection: string, error: StoredRunnerError | undefined): Promise<void>;
  loadError?(projection: string): Promise<StoredRunnerError | undefined>;
}

export interface StoredCheckpoint {
  readonly projection: string;
  readonly position: number;
  readonly version: number;
}

export function sameCheckpoint(a: Checkpoint | undefined, b: Checkpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.position === b.position && a.version === b.version;
}

export class InMemoryCheckpointStore implements CheckpointStore {
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly errors = new Map<string, StoredRunnerError>();

  get(projection: string): Checkpoint | undefined {
    return this.checkpoints.get(projection);
  }

  /** Synchronous compare-and-set, for targets that commit a read model and checkpoint in one step. */
  compareAndSet(projection: string, expected: Checkpoint | undefined, next: Checkpoint): void {
    this.assertExpected(projection, expected);
    this.checkpoints.set(projection, Object.freeze({ position: next.position, version: next.version }));
  }

  assertExpected(projection: string, expected: Checkpoint | undefined): void {
    const actual = this.checkpoints.get(projection);
    if (!sameCheckpoint(actual, expected)) throw new CheckpointConflictError(projection, expected, actual);
  }

  async load(projection: string): Promise<Checkpoint | undefined> {
    assertValidProjectionName(projection);
    return this.checkpoints.get(projection);
  }

  async save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    assertValidProjectionName(projection);
    this.compareAndSet(projection, expected, next);
  }

  async delete(projection: string): Promise<void> {
    this.checkpoints.delete(projection);
    this.errors.delete(projection);
  }

  async saveError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    assertValidProjectionName(projection);
    if (error === undefined) this.errors.delete(projection);
    else this.errors.set(projection, error);
  }

  async loadError(projection: string): Promise<StoredRunnerError | undefined> {
    assertValidProjectionName(projection);
    return this.errors.get(projection);
  }

  async list(): Promise<StoredCheckpoint[]> {
    return [...this.checkpoints]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([projection, c]) => Object.freeze({ projection, position: c.position, version: c.version }));
  }
}
