import type { AnyEvent } from '../../events/types.js';
import { ProjectionLockedError } from '../../projections/errors.js';
import type { Projection } from '../../projections/projection.js';
import type { CheckpointSummary } from '../../store/catalog.js';
import { integerOption, STORE_HELP, STORE_OPTIONS, withStore, writeLine, type Command, type Invocation, type StoreSession } from '../command.js';
import { CliUsageError, EXIT, ProjectionNotFoundError } from '../errors.js';
import { ProgressDisplay } from '../progress.js';
import { safeJsonStringify } from '../sanitize.js';
import type { OpenedStore } from '../stores.js';
import type { Style } from '../style.js';

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
  readonly lastError: string | null;
  readonly parked: number | null;
}

type AnyProjection = Projection<AnyEvent, unknown>;

function configuredProjections(session: StoreSession): AnyProjection[] {
  return (session.config.config.projections ?? []) as unknown as AnyProjection[];
}

export async function projectionStatusRows(opened: OpenedStore, configured: readonly AnyProjection[]): Promise<ProjectionStatusRow[]> {
  const admin = opened.projections;
  if (admin === undefined) return [];
  const checkpoints = new Map<string, CheckpointSummary>((await admin.listCheckpoints()).map((c) => [c.projection, c]));
  const byName = new Map(configured.map((p) => [p.name, p]));
  const names = [...new Set([...byName.keys(), ...checkpoints.keys()])].sort();
  const head = await opened.store.headPosition();
  const rows: ProjectionStatusRow[] = [];
  for (const name of names) {
    const checkpoint = checkpoints.get(name);
    const projection = byName.get(name);
    const runner = (await admin.lockHolder(name)) ?? null;
    const position = checkpoint?.position ?? 0;
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
      lastError: null,
      parked: null,
    });
  }
  return rows;
}

function statusTable(rows: readonly ProjectionStatusRow[], style: Style): string[] {
  const header = ['PROJECTION', 'STATE', 'POSITION', 'LAG', 'VERSION', 'PARKED', 'UPDATED', 'LAST ERROR'];
  const cells = rows.map((row) => [
    style.plain(row.projection),
    row.state + (row.needsRebuild ? ' (needs rebuild)' : ''),
    String(row.position),
    String(row.lag),
    row.version === null ? '-' : row.configuredVersion !== null && row.configuredVersion !== row.version ? `${row.version}→${row.configuredVersion}` : String(row.version),
    row.parked === null ? '-' : String(row.parked),
    row.updatedAt ?? '-',
    row.lastError === null ? '-' : style.plain(row.lastError),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
  const pad = (line: string[]): string[] => line.map((cell, i) => (i >= 2 && i <= 5 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)));
  const colourState = (state: string): string =>
    state.startsWith('running') ? style.green(state) : state.includes('rebuild') ? style.yellow(state) : style.dim(state);
  return [
    style.bold(pad(header).join('  ').trimEnd()),
    ...cells.map((line, index) => {
      const padded = pad(line);
      const lag = rows[index]!.lag > 0 ? style.yellow(padded[3]!) : padded[3]!;
      return [style.cyan(padded[0]!), colourState(padded[1]!), padded[2]!, lag, padded[4]!, padded[5]!, style.gray(padded[6]!), padded[7]!]
        .join('  ')
        .trimEnd();
    }),
  ];
}

function findConfigured(session: StoreSession, name: string, action: string): AnyProjection {
  const projection = configuredProjections(session).find((p) => p.name === name);
  if (projection === undefined) {
    const where = session.config.path === undefined ? 'no configuration file was found' : `it is not in ${session.config.path}`;
    throw new ProjectionNotFoundError(
      `Cannot ${action} projection '${name}': ${where}. ${action[0]!.toUpperCase()}${action.slice(1)} needs the projection's handlers: export it in 'projections' of eventfold.config.mjs (or pass --config).`,
    );
  }
  return projection;
}

async function status(invocation: Invocation): Promise<number> {
  const { values, io, style } = invocation;
  return withStore(invocation, {}, async (session) => {
    const rows = await projectionStatusRows(session.opened, configuredProjections(session));
    if (values['json'] === true) {
      for (const row of rows) await writeLine(io, safeJsonStringify(row));
      return EXIT.ok;
    }
    if (rows.length === 0) {
      await writeLine(io, style.dim('No projections: none has a checkpoint in this store, and none is configured.'));
      return EXIT.ok;
    }
    for (const line of statusTable(rows, style)) await writeLine(io, line);
    return EXIT.ok;
  });
}

async function rebuild(invocation: Invocation, name: string): Promise<number> {
  const { values, io, style } = invocation;
  const batchSize = integerOption(values, 'batch-size', 1);
  return withStore(invocation, {}, async (session) => {
    const projection = findConfigured(session, name, 'rebuild');
    if (projection.reset === undefined) {
      throw new CliUsageError(`Projection '${name}' has no reset(ctx) hook, so its read model cannot be emptied for a rebuild.`);
    }
    const admin = session.opened.projections!;
    const display = new ProgressDisplay(io, style, values['json'] === true);
    const runner = admin.createRunner(projection, {
      whenLocked: 'fail',
      progressIntervalMs: 100,
      onProgress: (progress) => display.report(progress),
      onError: (error, info) => {
        if (info.willRetry) io.stderr.write(`eventfold: warning: ${style.plain(error.message)} (attempt ${info.attempt}, retrying)\n`);
      },
      ...(batchSize !== undefined ? { batchSize } : {}),
    });
    try {
      await Promise.race([runner.rebuild(), io.interrupted.then(() => Promise.reject(new CliUsageError('Interrupted: the rebuild stopped at a consistent checkpoint; run it again to start over.')))]);
    } finally {
      await runner.stop();
      display.close();
    }
    const checkpoint = runner.checkpoint;
    if (values['json'] !== true) {
      await writeLine(io, `${style.green('✔')} Rebuilt ${style.cyan(name)} up to position ${checkpoint?.position ?? 0}.`);
    }
    return EXIT.ok;
  });
}

async function reset(invocation: Invocation, name: string): Promise<number> {
  const { io, style, values } = invocation;
  return withStore(invocation, {}, async (session) => {
    const projection = findConfigured(session, name, 'reset');
    const resetHook = projection.reset;
    if (resetHook === undefined) {
      throw new CliUsageError(`Projection '${name}' has no reset(ctx) hook, so its read model cannot be emptied.`);
    }
    const admin = session.opened.projections!;
    const target = admin.target();
    await target.prepare();
    const lease = await admin.lock().tryAcquire(name, `eventfold-cli-${process.pid}`);
    if (lease === undefined) {
      throw new ProjectionLockedError(name);
    }
    try {
      const current = await target.readCheckpoint(name);
      await target.commit(name, current, { position: 0, version: projection.version }, (ctx) => resetHook(ctx));
    } finally {
      await lease.release();
    }
    if (values['json'] === true) await writeLine(io, safeJsonStringify({ projection: name, reset: true, position: 0 }));
    else await writeLine(io, `${style.green('✔')} Reset ${style.cyan(name)}: read model emptied, checkpoint at 0. The next runner replays the log.`);
    return EXIT.ok;
  });
}

async function retryParked(invocation: Invocation, name: string): Promise<number> {
  return withStore(invocation, {}, async (session) => {
    void findConfigured(session, name, 'retry the parked events of');
    throw new CliUsageError('This version of eventfold keeps no parked events: a failing event stops its runner instead.');
  });
}

const SUBCOMMANDS = ['status', 'rebuild', 'reset', 'retry-parked'] as const;

export const projectionsCommand: Command = {
  name: 'projections',
  summary: 'Projection status, rebuild, reset, retry parked events',
  options: { ...STORE_OPTIONS, json: { type: 'boolean' }, 'batch-size': { type: 'string' } },
  positionals: { min: 1, max: 2 },
  help: `Usage: eventfold projections <status | rebuild <name> | reset <name> | retry-parked <name>> [options]

  status              Every projection with a checkpoint in the store or in the configuration:
                      state (running / stopped / never-ran), position, lag (positions behind the
                      head), checkpoint version (→ configured version when a rebuild is due),
                      parked events, last update, last error.
  rebuild <name>      Empties the read model (the projection's reset hook), replays the whole
                      log with a progress bar and ETA, and stops. Refused (exit 4) while a runner
                      holds the projection.
  reset <name>        Empties the read model and sets the checkpoint to 0 without replaying; the
                      next runner replays the log. Refused (exit 4) while a runner runs.
  retry-parked <name> Retries the events parked for the projection.

rebuild, reset and retry-parked need the projection's module: export it in 'projections' of
eventfold.config.mjs (see docs/cli.md).

Options:
  --json              status: one JSON object per line; rebuild: progress as JSON lines on stdout.
  --batch-size <n>    rebuild: events per read-model transaction (default 500).
${STORE_HELP}`,
  async run(invocation) {
    const [sub, name] = invocation.positionals;
    if (!(SUBCOMMANDS as readonly string[]).includes(sub!)) {
      throw new CliUsageError(`Unknown projections command '${sub}'. Use one of: ${SUBCOMMANDS.join(', ')}.`);
    }
    if (sub === 'status') {
      if (name !== undefined) throw new CliUsageError(`'eventfold projections status' takes no name.`);
      return status(invocation);
    }
    if (name === undefined) throw new CliUsageError(`'eventfold projections ${sub}' needs a projection name.`);
    if (sub === 'rebuild') return rebuild(invocation, name);
    if (sub === 'reset') return reset(invocation, name);
    return retryParked(invocation, name);
  },
};
