import { safeJsonStringify } from '../sanitize.js';
import { STORE_HELP, STORE_OPTIONS, withStore, writeLine, type Command } from '../command.js';
import { EXIT } from '../errors.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Create or upgrade the store schema (idempotent)',
  options: { ...STORE_OPTIONS, json: { type: 'boolean' } },
  positionals: { min: 0, max: 0 },
  help: `Usage: eventfold migrate [options]

Creates the store's tables (SQLite file, PostgreSQL schema), or brings an older schema up to
date. Safe to run again and from several processes at once. Projection checkpoint tables are
created as well.

Options:
  --json              Print {"migrated":true,"store":…} instead of a sentence.
${STORE_HELP}`,
  async run(invocation) {
    return withStore(invocation, { migrate: true }, async ({ opened }) => {
      // Checkpoint tables too, so `projections status` works before any runner started.
      await opened.projections?.prepare();
      const head = await opened.store.headPosition();
      if (invocation.values['json'] === true) {
        await writeLine(invocation.io, safeJsonStringify({ migrated: true, store: opened.kind, headPosition: head }));
      } else {
        const { style } = invocation;
        await writeLine(invocation.io, `${style.green('✔')} ${style.plain(opened.description)} is migrated (head position ${head}).`);
      }
      return EXIT.ok;
    });
  },
};
