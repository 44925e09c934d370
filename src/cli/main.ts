import { isEventfoldError } from '../errors.js';
import { parseCommandLine, styleFor, type CliIO, type Command } from './command.js';
import { migrateCommand } from './commands/migrate.js';
import { projectionsCommand } from './commands/projections.js';
import { readCommand } from './commands/read.js';
import { streamsCommand } from './commands/streams.js';
import { tailCommand } from './commands/tail.js';
import { inspectCommand } from './commands/inspect.js';
import { CliUsageError, EXIT } from './errors.js';
import { sanitizeText } from './sanitize.js';

export const COMMANDS: readonly Command[] = [
  migrateCommand,
  streamsCommand,
  readCommand,
  tailCommand,
  projectionsCommand,
  inspectCommand,
];

declare const __EVENTFOLD_VERSION__: string | undefined;

function version(): string {
  return typeof __EVENTFOLD_VERSION__ === 'string' ? __EVENTFOLD_VERSION__ : 'dev';
}

export function overviewHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: eventfold <command> [options]

Look into an eventfold store (SQLite file, PostgreSQL or NATS JetStream) from the shell.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'eventfold <command> --help' for a command's options.
The store: --db <file.db | postgres://… | nats://…>, else 'store' in ./eventfold.config.mjs, else $DATABASE_URL.
Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 projection locked by a runner.`;
}

const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  CLI_USAGE: EXIT.usage,
  INVALID_ARGUMENT: EXIT.usage,
  INVALID_STREAM_ID: EXIT.usage,
  STREAM_NOT_FOUND: EXIT.notFound,
  PROJECTION_NOT_FOUND: EXIT.notFound,
  PROJECTION_LOCKED: EXIT.locked,
};

/** The message of an error on one line, with stored text made safe for the terminal. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return sanitizeText(message.replace(/\s*\n\s*/g, ' ').trim()) || 'unknown error';
}

/** Runs the command line `args` (without `node` and the script); resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIO): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? rest[0] : undefined;
      const command = COMMANDS.find((c) => c.name === topic);
      if (topic !== undefined && command === undefined) throw new CliUsageError(`Unknown command '${topic}'. Run 'eventfold --help'.`);
      io.stdout.write(`${command?.help ?? overviewHelp()}\n`);
      return name === undefined ? EXIT.usage : EXIT.ok;
    }
    if (name === '--version' || name === '-v') {
      io.stdout.write(`${version()}\n`);
      return EXIT.ok;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (command === undefined) throw new CliUsageError(`Unknown command '${name}'. Run 'eventfold --help' for the list.`);
    const { values, positionals } = parseCommandLine(command, rest);
    if (values['help'] === true) {
      io.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run({ values, positionals, io, style: styleFor(values, io) });
  } catch (error) {
    io.stderr.write(`eventfold: error: ${oneLine(error)}\n`);
    if (isEventfoldError(error)) return EXIT_BY_CODE[error.code] ?? EXIT.failure;
    return EXIT.failure;
  }
}
