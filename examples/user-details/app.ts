import { createWriteSide, type WriteSideOptions } from './commands.js';
import { commandMiddleware } from './evolution.js';
import type { Infrastructure, ProjectionMode, ReadSide } from './infrastructure.js';
import { createReadSide } from './queries.js';
import type { ProjectionProgress } from 'eventfold';

export interface AppOptions {
  /** How the users read model is kept; see `ProjectionMode`. Default 'async'. */
  readonly projection?: ProjectionMode;
  readonly onProjectionProgress?: (progress: ProjectionProgress) => void;
  readonly clock?: WriteSideOptions['clock'];
  readonly hash?: WriteSideOptions['hash'];
  readonly hashing?: WriteSideOptions['hashing'];
}

/** Wires the write side (commands) and the read side (queries) over one infrastructure. */
export async function createUserDetailsApp(infrastructure: Infrastructure, options: AppOptions = {}) {
  const write = (infrastructure.writeSide ?? createWriteSide)({
    store: infrastructure.store,
    snapshots: infrastructure.snapshots,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.hash === undefined ? {} : { hash: options.hash }),
    ...(options.hashing === undefined ? {} : { hashing: options.hashing }),
    forget: infrastructure.evolved.forget,
  });
  // Schema validation, then idempotency (commands with a commandId run once): see evolution.ts.
  for (const middleware of commandMiddleware(infrastructure.evolved)) write.commandBus.use(middleware);
  const readSide: ReadSide = await infrastructure.startReadSide(options.projection ?? 'async', options.onProjectionProgress);
  const queries = createReadSide(infrastructure.readModel, infrastructure.store);
  return {
    write,
    commands: write.commandBus,
    queries,
    readSide,
    async close(): Promise<void> {
      await infrastructure.close();
    },
  };
}

export type UserDetailsApp = Awaited<ReturnType<typeof createUserDetailsApp>>;
