import { isEventfoldError } from '../../errors.js';
import type { RecordedEvent } from '../../events/types.js';
import {
  categoryOf,
  integerOption,
  listOption,
  STORE_HELP,
  STORE_OPTIONS,
  withStore,
  writeLine,
  type CliIO,
  type Command,
} from '../command.js';
import { EXIT } from '../errors.js';
import { eventJson, formatEventLine } from '../format.js';
import { safeJsonStringify, sanitizeText } from '../sanitize.js';

/** Capped exponential backoff with full jitter, for transient store failures. */
export function retryDelay(attempt: number, baseMs = 200, capMs = 10_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function sleep(ms: number, io: CliIO): Promise<'slept' | 'interrupted'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('slept'), ms);
    void io.interrupted.then(() => {
      clearTimeout(timer);
      resolve('interrupted');
    });
  });
}

export const tailCommand: Command = {
  name: 'tail',
  summary: 'Follow the global log live',
  options: {
    ...STORE_OPTIONS,
    type: { type: 'string', short: 't', multiple: true },
    category: { type: 'string', short: 'c', multiple: true },
    from: { type: 'string' },
    max: { type: 'string' },
    'poll-ms': { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: { min: 0, max: 0 },
  help: `Usage: eventfold tail [options]

Follows the global log: prints events as they are committed, one line each, until Ctrl-C.
By default it starts at the end of the log (only new events).

Options:
  -t, --type <type>       Only events of this type (repeat for several).
  -c, --category <name>   Only streams of this category: the stream id up to its first '-'
                          ('user' matches user-1, user-42; repeat for several).
      --from <position>   Start at this global position (0: the whole log) instead of the end.
      --max <n>           Stop after <n> matching events.
      --poll-ms <ms>      How often to look for new events (default 250).
      --json              One JSON object per line (as 'eventfold read --json').
${STORE_HELP}`,
  async run(invocation) {
    const { values, io, style } = invocation;
    const types = new Set(listOption(values, 'type'));
    const categories = new Set(listOption(values, 'category'));
    const max = integerOption(values, 'max', 1);
    const pollMs = integerOption(values, 'poll-ms', 10) ?? 250;
    const from = integerOption(values, 'from', 0);
    const matches = (event: RecordedEvent): boolean =>
      (types.size === 0 || types.has(event.type)) && (categories.size === 0 || categories.has(categoryOf(event.streamId)));
    return withStore(invocation, {}, async ({ opened }) => {
      let next = from ?? (await opened.store.headPosition()) + 1;
      let shown = 0;
      let failures = 0;
      if (values['json'] !== true && io.stderr.isTTY === true) {
        io.stderr.write(style.dim(`Following ${sanitizeText(opened.description)} from position ${next}; Ctrl-C to stop.\n`));
      }
      for (;;) {
        let page: RecordedEvent[];
        try {
          page = await opened.store.readAll({ fromPosition: next, limit: 500 }).toArray();
          failures = 0;
        } catch (error) {
          if (!isEventfoldError(error, 'STORE_UNAVAILABLE')) throw error;
          failures++;
          const delay = retryDelay(failures);
          io.stderr.write(`eventfold: warning: ${sanitizeText(error.message)} (retrying in ${delay}ms)\n`);
          if ((await sleep(delay, io)) === 'interrupted') return EXIT.ok;
          continue;
        }
        for (const event of page) {
          next = event.position + 1;
          if (!matches(event)) continue;
          await writeLine(io, values['json'] === true ? safeJsonStringify(eventJson(event)) : formatEventLine(event, style));
          shown++;
          if (max !== undefined && shown >= max) return EXIT.ok;
        }
        if (page.length === 0 && (await sleep(pollMs, io)) === 'interrupted') return EXIT.ok;
      }
    });
  },
};
