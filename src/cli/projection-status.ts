import type { AnyEvent } from '../events/types.js';
import type { DeadLetter, DeadLetterStore } from '../projections/dead-letters.js';
import type { Projection } from '../projections/projection.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
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
  /**
   * running: a runner holds the lock; retrying: a runner is riding out a fault (it stored one
   * within the last minute, or holds the lock); failed: its runner stopped on a fault (or parked
   * an event and has not committed since); stopped: no runner; never-ran: no checkpoint yet;
   * unknown: NATS KV checkpoints with no lease of a NatsProjectionLock in the bucket, and no fault stored.
   */
  readonly state: 'running' | 'retrying' | 'failed' | 'stopped' | 'never-ran' | 'unknown';
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
  /** The runner's stored last fault, else the error of the most recently parked event. */
  readonly lastError: string | null;
  /** Where `lastError` comes from. */
  readonly lastErrorSource: 'runner' | 'parked' | null;
  /** The runner fault's code (driver or eventfold code), when it has one. */
  readonly errorCode: string | null;
  /** When the runner reported the fault (or the event was parked). */
  readonly errorAt: string | null;
  /** Failed attempts in a row of the runner's fault. */
  readonly errorAttempts: number | null;
  /** Events parked as dead letters. */
  readonly parked: number;
  /** Where the checkpoints were read. */
  readonly checkpoints: string;
}

export type AnyProjection = Projection<AnyEvent, unknown>;

/**
 * A stored `retrying` fault counts as live this long without a lock holder: a runner backing off
 * releases its lock, and it rewrites the record at every attempt (the default backoff is capped at
 * 5 s). An older one means the runner went away while retrying.
 */
export const RETRYING_FRESH_MS = 60_000;

function stateOf(
  runner: string | null,
  error: StoredRunnerError | undefined,
  checkpoint: CheckpointSummary | undefined,
  locksVisible: boolean,
  now: number,
): ProjectionStatusRow['state'] {
  const retryingNow = error?.state === 'retrying' && (runner !== null || now - error.at.getTime() <= RETRYING_FRESH_MS);
  if (retryingNow) return 'retrying';
  if (runner !== null) return 'running';
  if (error?.state === 'failed') return 'failed';
  if (!locksVisible) return checkpoint === undefined && error === undefined ? 'never-ran' : 'unknown';
  return checkpoint === undefined ? 'never-ran' : 'stopped';
}

export async function projectionStatusRows(opened: OpenedStore, configured: readonly AnyProjection[]): Promise<ProjectionStatusRow[]> {
  const admin = opened.projections;
  if (admin === undefined) return [];
  const checkpoints = new Map<string, CheckpointSummary>((await admin.listCheckpoints()).map((c) => [c.projection, c]));
  const errors = await admin.listErrors();
  const byName = new Map(configured.map((p) => [p.name, p]));
  const names = [...new Set([...byName.keys(), ...checkpoints.keys(), ...errors.keys()])].sort();
  const head = await opened.store.headPosition();
  const deadLetters = await admin.deadLetters();
  const rows: ProjectionStatusRow[] = [];
  for (const name of names) {
    const checkpoint = checkpoints.get(name);
    const projection = byName.get(name);
    const error = errors.get(name);
    const runner = (await admin.lockHolder(name)) ?? null;
    const position = checkpoint?.position ?? 0;
    const parked = deadLetters === undefined ? [] : await allDeadLetters(deadLetters, name);
    const lastParked = parked.reduce<DeadLetter | undefined>((latest, letter) => (latest === undefined || letter.parkedAt >= latest.parkedAt ? letter : latest), undefined);
    rows.push({
      projection: name,
      state: stateOf(runner, error, checkpoint, admin.locksVisible, Date.now()),
      runner,
      position,
      headPosition: head,
      lag: Math.max(0, head - position),
      version: checkpoint?.version ?? null,
      configuredVersion: projection?.version ?? null,
      needsRebuild: checkpoint !== undefined && projection !== undefined && projection.version !== checkpoint.version,
      updatedAt: checkpoint?.updatedAt.toISOString() ?? null,
      inConfig: projection !== undefined,
      lastError: error?.message ?? lastParked?.error ?? null,
      lastErrorSource: error !== undefined ? 'runner' : lastParked !== undefined ? 'parked' : null,
      errorCode: error?.code ?? null,
      errorAt: error?.at.toISOString() ?? lastParked?.parkedAt.toISOString() ?? null,
      errorAttempts: error?.attempts ?? lastParked?.attempts ?? null,
      parked: parked.length,
      checkpoints: admin.description,
    });
  }
  return rows;
}

/** The store's projection bookkeeping, or a usage error naming the store that keeps none. */
export function requireProjections(opened: OpenedStore): NonNullable<OpenedStore['projections']> {
  if (opened.projections === undefined) {
    throw new CliUsageError(
      `The ${opened.kind} store keeps no projection checkpoints the CLI can read: pass --checkpoints <where the runners keep them>.`,
    );
  }
  return opened.projections;
}
