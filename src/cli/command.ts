import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type LoadedConfig } from './config.js';
import { CliUsageError } from './errors.js';
import { chooseStore, openStore, type OpenedStore } from './stores.js';
import { colourEnabled, createStyle, type Style } from './style.js';

export interface CliIO {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Resolves when the user asks to stop (Ctrl-C); long-running commands race against it. */
  readonly interrupted: Promise<void>;
}

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Options every command that touches a store takes. */
export const STORE_OPTIONS: OptionSpec = {
  db: { type: 'string' },
  schema: { type: 'string' },
  checkpoints: { type: 'string' },
  config: { type: 'string' },
};

export const COMMON_OPTIONS: OptionSpec = {
  help: { type: 'boolean', short: 'h' },
  'no-color': { type: 'boolean' },
};

export const STORE_HELP = `Store options:
  --db <target>       SQLite file path (or sqlite:<path>), a postgres:// URL, or a nats:// URL
                      (?stream=<name>&subjectPrefix=<prefix> for the JetStream stream).
                      Default: 'store' in the config file, else $DATABASE_URL.
  --schema <name>     PostgreSQL schema (default: the config's, $EVENTFOLD_PG_SCHEMA, or eventfold).
  --checkpoints <where>
                      Where the projection runners keep their checkpoints, when not in the store:
                      the read model's SQLite file, postgres://…[?schema=<name>], or
                      nats-kv:<bucket>. Default: 'checkpoints' in the config file, else
                      $EVENTFOLD_CHECKPOINTS, else the store itself (on NATS: the KV bucket
                      eventfold_checkpoints).
  --config <file>     Configuration module (default: ./eventfold.config.mjs if present).
  --no-color          Plain output (also: NO_COLOR=1, or when stdout is not a terminal).
  -h, --help          This help.`;

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Invocation {
  readonly values: Values;
  readonly positionals: string[];
  readonly io: CliIO;
  readonly style: Style;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full `--help` text. */
  readonly help: string;
  readonly options: OptionSpec;
  /** How many positionals the command takes. */
  readonly positionals: { readonly min: number; readonly max: number };
  run(invocation: Invocation): Promise<number>;
}

export function parseCommandLine(command: Command, args: readonly string[]): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...COMMON_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (error) {
    // Node's messages run on with advice about '--'; the first sentence is the point.
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.split('. ')[0]!.replace(/\.$/, '');
    throw new CliUsageError(`${message} (see: eventfold ${command.name} --help)`);
  }
  if (parsed.values['help'] === true) return parsed;
  const count = parsed.positionals.length;
  if (count < command.positionals.min || count > command.positionals.max) {
    const expected =
      command.positionals.min === command.positionals.max
        ? `${command.positionals.min}`
        : `${command.positionals.min} to ${command.positionals.max}`;
    throw new CliUsageError(
      `'eventfold ${command.name}' takes ${expected} argument${expected === '1' ? '' : 's'}, got ${count} (see: eventfold ${command.name} --help)`,
    );
  }
  return parsed;
}

export function styleFor(values: Values, io: CliIO): Style {
  return createStyle(colourEnabled(io.env, io.stdout.isTTY === true, values['no-color'] === true));
}

export function stringOption(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function listOption(values: Values, name: string): string[] {
  const value = values[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}

/** A non-negative integer option, or undefined when absent. */
export function integerOption(values: Values, name: string, min = 0): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw new CliUsageError(`--${name} must be an integer >= ${min}, got '${raw}'.`);
  }
  return Number(raw);
}

export interface StoreSession {
  readonly opened: OpenedStore;
  readonly config: LoadedConfig;
}

/** Loads the configuration, opens the store, runs `fn` and closes the store whatever happens. */
export async function withStore<T>(
  invocation: Invocation,
  options: { readonly migrate?: boolean },
  fn: (session: StoreSession) => Promise<T>,
): Promise<T> {
  const { values, io } = invocation;
  const config = await loadConfig(stringOption(values, 'config'), io.cwd);
  const choice = chooseStore(stringOption(values, 'db'), stringOption(values, 'schema'), config.config.store, io.env);
  const envCheckpoints = io.env['EVENTFOLD_CHECKPOINTS'] === '' ? undefined : io.env['EVENTFOLD_CHECKPOINTS'];
  const checkpoints = stringOption(values, 'checkpoints') ?? config.config.checkpoints ?? envCheckpoints;
  const opened = await openStore({ ...choice, checkpoints }, { cwd: io.cwd, migrate: options.migrate === true });
  try {
    return await fn({ opened, config });
  } finally {
    await opened.close().catch(() => undefined);
  }
}

/** Writes a line to stdout, waiting when the pipe is full (large outputs, slow readers). */
export function writeLine(io: CliIO, line: string): Promise<void> | void {
  if (!io.stdout.write(`${line}\n`)) {
    return new Promise((resolve) => io.stdout.once('drain', () => resolve()));
  }
}

/** Formats a duration for people: 850ms, 12s, 3m 05s, 1h 02m. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** The category of a stream: its id up to the first `-` (the whole id when there is none). */
export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash < 0 ? streamId : streamId.slice(0, dash);
}
