import type { StreamSummary } from '../../store/catalog.js';
import { integerOption, STORE_HELP, STORE_OPTIONS, stringOption, withStore, writeLine, type Command } from '../command.js';
import { CliUsageError, EXIT } from '../errors.js';
import { safeJsonStringify, sanitizeStreamId } from '../sanitize.js';
import type { Style } from '../style.js';

export const streamsCommand: Command = {
  name: 'streams',
  summary: 'List streams with their version and last write',
  options: {
    ...STORE_OPTIONS,
    prefix: { type: 'string', short: 'p' },
    after: { type: 'string' },
    limit: { type: 'string', short: 'n' },
    json: { type: 'boolean' },
  },
  positionals: { min: 0, max: 1 },
  help: `Usage: eventfold streams [prefix] [options]

Lists streams in code point order of their ids, with version (event count), last position and
the time of the last write.

Options:
  -p, --prefix <text> Only streams whose id starts with <text> (same as the positional).
      --after <id>    Start after this stream id (paging: pass the last id of the previous page).
  -n, --limit <n>     At most <n> streams (default 100, at most 10000).
      --json          One JSON object per line: {"streamId","version","lastPosition","lastWrittenAt"}.
${STORE_HELP}`,
  async run(invocation) {
    const { values, positionals, io, style } = invocation;
    const prefix = stringOption(values, 'prefix') ?? positionals[0];
    if (stringOption(values, 'prefix') !== undefined && positionals[0] !== undefined) {
      throw new CliUsageError('Give the prefix either as an argument or with --prefix, not both.');
    }
    const limit = integerOption(values, 'limit', 1);
    if (limit !== undefined && limit > 10_000) throw new CliUsageError(`--limit must be at most 10000, got ${limit}.`);
    const after = stringOption(values, 'after');
    return withStore(invocation, {}, async ({ opened }) => {
      if (opened.catalog === undefined) {
        throw new CliUsageError(`The ${opened.kind} store cannot list streams.`);
      }
      const streams = await opened.catalog.listStreams({
        ...(prefix !== undefined ? { prefix } : {}),
        ...(after !== undefined ? { after } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      if (values['json'] === true) {
        for (const stream of streams) {
          await writeLine(io, safeJsonStringify({ ...stream, lastWrittenAt: stream.lastWrittenAt.toISOString() }));
        }
        return EXIT.ok;
      }
      if (streams.length === 0) {
        await writeLine(io, style.dim(prefix === undefined ? 'No streams.' : `No streams starting with '${prefix}'.`));
        return EXIT.ok;
      }
      for (const line of streamTable(streams, style)) await writeLine(io, line);
      if (streams.length === (limit ?? 100)) {
        const last = streams[streams.length - 1]!.streamId;
        await writeLine(io, style.dim(`… more may follow: --after ${JSON.stringify(last)}`));
      }
      return EXIT.ok;
    });
  },
};

function streamTable(streams: readonly StreamSummary[], style: Style): string[] {
  const rows = streams.map((s) => [sanitizeStreamId(s.streamId), String(s.version), String(s.lastPosition), s.lastWrittenAt.toISOString()]);
  const header = ['STREAM', 'VERSION', 'POSITION', 'LAST WRITE'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const pad = (cells: string[]): string[] => cells.map((cell, column) => (column === 1 || column === 2 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)));
  return [
    style.bold(pad(header).join('  ').trimEnd()),
    ...rows.map((row) => {
      const [id, version, position, at] = pad(row);
      return `${style.cyan(id!)}  ${version}  ${style.dim(position!)}  ${style.gray(at!)}`.trimEnd();
    }),
  ];
}
