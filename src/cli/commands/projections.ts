import { ProjectionLockedError } from '../../projections/errors.js';
import { integerOption, STORE_HELP, STORE_OPTIONS, withStore, writeLine, type Command, type Invocation, type StoreSession } from '../command.js';
import { CliUsageError, EXIT, ProjectionNotFoundError } from '../errors.js';
import { ProgressDisplay } from '../progress.js';
import { safeJsonStringify } from '../sanitize.js';
import { retryParked } from './retry-parked.js';
import { projectionStatusRows, requireProjections, type AnyProjection, type ProjectionStatusRow } from '../projection-status.js';
import type { Style } from '../style.js';

/** `[CODE] message (attempt n, at)`: cut to one line of at most 100 characters, sanitised. */
function errorCell(row: ProjectionStatusRow, style: Style): string {
  if (row.lastError === null) return '-';
  const oneLine = row.lastError.replace(/\s*\n\s*/g, ' ');
  const message = oneLine.length > 100 ? `${oneLine.slice(0, 99)}…` : oneLine;
  const code = row.errorCode === null ? '' : `[${row.errorCode.slice(0, 40)}] `;
  const source = row.lastErrorSource === 'parked' ? 'parked' : `attempt ${row.errorAttempts ?? 1}`;
  return `${style.plain(code + message)} ${style.dim(`(${source}, ${row.errorAt ?? '?'})`)}`;
}

function statusTable(rows: readonly ProjectionStatusRow[], style: Style): string[] {
  const header = ['PROJECTION', 'STATE', 'POSITION', 'LAG', 'VERSION', 'PARKED', 'UPDATED', 'LAST ERROR'];
  const cells = rows.map((row) => [
    style.plain(row.projection),
    row.state + (row.needsRebuild ? ' (needs rebuild)' : ''),
    String(row.position),
    String(row.lag),
    row.version === null ? '-' : row.configuredVersion !== null && row.configuredVersion !== row.version ? `${row.version}→${row.configuredVersion}` : String(row.version),
    String(row.parked),
    row.updatedAt ?? '-',
    errorCell(row, style),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
  const pad = (line: string[]): string[] => line.map((cell, i) => (i >= 2 && i <= 5 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)));
  const colourState = (state: string): string =>
    state.startsWith('running')
      ? style.green(state)
      : state.startsWith('failed')
        ? style.red(state)
        : state.startsWith('retrying') || state.includes('rebuild')
          ? style.yellow(state)
          : style.dim(state);
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

function configuredProjections(session: StoreSession): AnyProjection[] {
  return (session.config.config.projections ?? []) as unknown as AnyProjection[];
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
    requireProjections(session.opened);
    const rows = await projectionStatusRows(session.opened, configuredProjections(session));
    if (values['json'] === true) {
      for (const row of rows) await writeLine(io, safeJsonStringify(row));
      return EXIT.ok;
    }
    if (rows.length === 0) {
      const where = session.opened.projections?.description ?? session.opened.description;
      await writeLine(io, style.dim(`No projections: none has a checkpoint in ${style.plain(where)}, and none is configured.`));
      const elsewhere = (await session.opened.projections?.elsewhere?.()) ?? [];
      if (elsewhere.length > 0) {
        await writeLine(io, `Checkpoints may be in: ${elsewhere.slice(0, 20).map((where) => style.cyan(where)).join(', ')} (pass it as --checkpoints).`);
      }
      if (session.opened.kind === 'nats') {
        await writeLine(io, style.dim('Runners that keep their checkpoints with a read model elsewhere: pass --checkpoints <SQLite file | postgres://… | nats-kv:<bucket>>.'));
      }
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
    const admin = requireProjections(session.opened);
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
      const interrupted = io.interrupted.then(() => Promise.reject(new Error('Interrupted: the rebuild stopped at a consistent checkpoint; run it again to start over.')));
      interrupted.catch(() => undefined);
      await Promise.race([runner.rebuild(), interrupted]);
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
    const admin = requireProjections(session.opened);
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


const SUBCOMMANDS = ['status', 'rebuild', 'reset', 'retry-parked'] as const;

export const projectionsCommand: Command = {
  name: 'projections',
  summary: 'Projection status, rebuild, reset, retry parked events',
  options: {
    ...STORE_OPTIONS,
    json: { type: 'boolean' },
    'batch-size': { type: 'string' },
    position: { type: 'string' },
    'no-wait': { type: 'boolean' },
    timeout: { type: 'string' },
  },
  positionals: { min: 1, max: 2 },
  help: `Usage: eventfold projections <status | rebuild <name> | reset <name> | retry-parked <name>> [options]

  status              Every projection with a checkpoint (see --checkpoints) or in the
                      configuration: state (running / retrying / failed / stopped / never-ran /
                      unknown), position, lag (positions behind the head), checkpoint version
                      (→ configured version when a rebuild is due), parked events, last update,
                      and the last error: the runner's own fault as it stored it (code, attempts,
                      when; cleared once it recovers), else the last parked event's.
  rebuild <name>      Empties the read model (the projection's reset hook), replays the whole
                      log with a progress bar and ETA, and stops. Refused (exit 4) while a runner
                      holds the projection.
  reset <name>        Empties the read model and sets the checkpoint to 0 without replaying; the
                      next runner replays the log. Refused (exit 4) while a runner runs.
  retry-parked <name> Marks the projection's parked events (dead letters) for another attempt.
                      With a runner running, waits for it to re-apply them (progress bar, ETA)
                      and exits 1 if any failed again; without one, they are retried when a
                      runner starts.

rebuild and reset need the projection's module: export it in 'projections' of
eventfold.config.mjs (see docs/cli.md). status and retry-parked work without it.
On nats-kv:<bucket> checkpoints they take the runners' NatsProjectionLock lease
there, and run the handlers with no context (the module reaches its read model).

Options:
  --json              status: one JSON object per line; rebuild: progress as JSON lines on stdout.
  --batch-size <n>    rebuild: events per read-model transaction (default 500).
  --position <p>      retry-parked: only the event parked at global position <p>.
  --no-wait           retry-parked: mark and return without waiting for the runner.
  --timeout <s>       retry-parked: longest wait for the runner (default 300).
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
