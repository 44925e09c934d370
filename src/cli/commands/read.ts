import { integerOption, STORE_HELP, STORE_OPTIONS, withStore, writeLine, type Command } from '../command.js';
import { CliUsageError, EXIT } from '../errors.js';
import { eventJson, formatEventBlock } from '../format.js';
import { safeJsonStringify } from '../sanitize.js';

export const readCommand: Command = {
  name: 'read',
  summary: 'Print the events of one stream',
  options: {
    ...STORE_OPTIONS,
    from: { type: 'string' },
    to: { type: 'string' },
    backwards: { type: 'boolean', short: 'b' },
    limit: { type: 'string', short: 'n' },
    json: { type: 'boolean' },
  },
  positionals: { min: 1, max: 1 },
  help: `Usage: eventfold read <stream> [options]

Prints the events of <stream> in version order: type, version, position, time, event id, data
and metadata. Stored text is shown with terminal control characters escaped.

Options:
      --from <v>      First version (inclusive). Reading backwards: the version to start down from.
      --to <v>        Last version (inclusive). Reading backwards: the lowest version.
  -b, --backwards     Newest first.
  -n, --limit <n>     At most <n> events.
      --json          One JSON object per line: streamId, version, position, type, eventId,
                      recordedAt, data, metadata.

Exit code 3 when the stream does not exist.
${STORE_HELP}`,
  async run(invocation) {
    const { values, positionals, io, style } = invocation;
    const streamId = positionals[0]!;
    const from = integerOption(values, 'from', 1);
    const to = integerOption(values, 'to', 1);
    const limit = integerOption(values, 'limit', 1);
    const backwards = values['backwards'] === true;
    if (from !== undefined && to !== undefined && (backwards ? to > from : from > to)) {
      throw new CliUsageError(
        backwards ? `Reading backwards, --to (${to}) must not be above --from (${from}).` : `--from (${from}) must not be above --to (${to}).`,
      );
    }
    return withStore(invocation, {}, async ({ opened }) => {
      const stream = opened.store.readStream(streamId, {
        ...(from !== undefined ? { fromVersion: from } : {}),
        ...(to !== undefined ? { toVersion: to } : {}),
        ...(limit !== undefined ? { limit } : {}),
        backwards,
      });
      let count = 0;
      for await (const event of stream) {
        if (values['json'] === true) {
          await writeLine(io, safeJsonStringify(eventJson(event)));
        } else {
          if (count > 0) await writeLine(io, '');
          for (const line of formatEventBlock(event, style, { showStream: false })) await writeLine(io, line);
        }
        count++;
      }
      if (count === 0 && values['json'] !== true) await writeLine(io, style.dim('No events in that range.'));
      return EXIT.ok;
    });
  },
};
