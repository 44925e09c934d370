import { startInspectServer } from '../inspect/server.js';
import { loadAggregatesModule } from '../config.js';
import { integerOption, stringOption, STORE_HELP, STORE_OPTIONS, withStore, writeLine, type Command } from '../command.js';
import { CliUsageError, EXIT } from '../errors.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Browse streams, events, the live log and projections in a web page',
  options: { ...STORE_OPTIONS, port: { type: 'string', short: 'p' }, aggregates: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  help: `Usage: eventfold inspect [options]

Serves a read-only event browser on http://127.0.0.1:<port>/ until Ctrl-C: search and page
through streams, each event's JSON and what changed since the previous one, the global log
live, projection status and lag, and — for the aggregates listed in the config file — the
aggregate's state at any version (time travel).

It listens on 127.0.0.1 only, answers only to the Host names 127.0.0.1 and localhost, and
needs no network: the page's assets are part of the package.

Options:
  -p, --port <n>      Port (default 4100; 0 picks a free port).
      --aggregates <file>
                      A module exporting 'aggregates' for time travel (instead of, or on top of,
                      the config file's).
${STORE_HELP}`,
  async run(invocation) {
    const { values, io, style } = invocation;
    const port = integerOption(values, 'port', 0) ?? 4100;
    if (port > 65_535) throw new CliUsageError(`--port must be at most 65535, got ${port}.`);
    const aggregatesFile = stringOption(values, 'aggregates');
    return withStore(invocation, {}, async ({ opened, config }) => {
      const extra = aggregatesFile === undefined ? [] : await loadAggregatesModule(aggregatesFile, io.cwd);
      const aggregates = [...extra, ...(config.config.aggregates ?? [])];
      const server = await startInspectServer({ opened, config: { ...config.config, aggregates }, port });
      try {
        await writeLine(io, `eventfold inspect: ${style.plain(opened.description)}`);
        await writeLine(io, `Listening on ${style.cyan(server.url)} (Ctrl-C to stop)`);
        await io.interrupted;
      } finally {
        await server.close();
      }
      return EXIT.ok;
    });
  },
};
