import type { AnyEvent } from '../events/types.js';
import type { DeadLetter, DeadLetterStore } from '../projections/dead-letters.js';
import type { Projection } from '../projections/projection.js';
import type { CheckpointSummary } from '../store/catalog.js';
import { CliUsageError } from './errors.js';
import type { OpenedStore } from './stores.js';

/** Every parked event of a projection, oldest position first. */
export async function allDeadLetters(store: DeadLetterStore, projection: string): Promise<DeadLetter[]> {
  const all: DeadLetter[] = [];
  for (;;) {
    const page = await store.list(projection, { limit: 1_000, afterPosition: all.at(-1)?.position ?? 0 });
    all.push(...page);
    if (page.length < 1_000) return all;
  }
}

/** One row of `projections status`. */
export interface ProjectionStatusRow {
  readonly projection: string;
  /** running: a runner holds the lock; stopped: none does; never-ran: no checkpoint yet. */
  readonly state: 'running' | 'stopped' | 'never-ran';
  readonly runner: string | null;
  readonly position: number;
  readonly headPosition: number;
  /** Positions behind the head (an upper bound on events: positions can have gaps). */
  readonly lag: number;
  /** The projection version of the checkpoint. */
  readonly version: number | null;
  /** The version in the configuration, when the projection is configured there. */
  readonly configuredVersion: number | null;
  /** True when the configured version differs from the checkpoint's: the next runner rebuilds. */
  readonly needsRebuild: boolean;
  readonly updatedAt: string | null;
  readonly inConfig: boolean;
  /** The error of the most recently parked event (a runner's live errors stay in its process). */
  readonly lastError: string | null;
  /** Events parked as dead letters. */
  readonly parked: number;
}

export type AnyProjection = Projection<AnyEvent, unknown>;


export async function projectionStatusRows(opened: OpenedStore, configured: readonly AnyProjection[]): Promise<ProjectionStatusRow[]> {
  const admin = opened.projections;
  if (admin === undefined) return [];
  const checkpoints = new Map<string, CheckpointSummary>((await admin.listCheckpoints()).map((c) => [c.projection, c]));
  const byName = new Map(configured.map((p) => [p.name, p]));
  const names = [...new Set([...byName.keys(), ...checkpoints.keys()])].sort();
  const head = await opened.store.headPosition();
  const deadLetters = await admin.deadLetters();
  const rows: ProjectionStatusRow[] = [];
  for (const name of names) {
    const checkpoint = checkpoints.get(name);
    const projection = byName.get(name);
    const runner = (await admin.lockHolder(name)) ?? null;
    const position = checkpoint?.position ?? 0;
    const parked = deadLetters === undefined ? [] : await allDeadLetters(deadLetters, name);
    rows.push({
      projection: name,
      state: runner !== null ? 'running' : checkpoint === undefined ? 'never-ran' : 'stopped',
      runner,
      position,
      headPosition: head,
      lag: Math.max(0, head - position),
      version: checkpoint?.version ?? null,
      configuredVersion: projection?.version ?? null,
      needsRebuild: checkpoint !== undefined && projection !== undefined && projection.version !== checkpoint.version,
      updatedAt: checkpoint?.updatedAt.toISOString() ?? null,
      inConfig: projection !== undefined,
      lastError: parked.at(-1)?.error ?? null,
      parked: deadLetters === undefined ? 0 : parked.length,
    });
  }
  return rows;
}


/** The store's projection bookkeeping, or a usage error naming the store that keeps none. */
export function requireProjections(opened: OpenedStore): NonNullable<OpenedStore['projections']> {
  if (opened.projections === undefined) {
    throw new CliUsageError(
      `The ${opened.kind} store keeps no projection checkpoints the CLI can read; projection commands work on SQLite and PostgreSQL stores.`,
    );
  }
  return opened.projections;
}
