import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { Projection } from '../projections/projection.js';
import type { CheckpointSetting } from './checkpoint-locations.js';
import { CliUsageError } from './errors.js';

/** Where the store is: a SQLite path or URL string, or an object naming the kind. */
export type StoreSetting =
  | string
  | { readonly sqlite: string }
  | { readonly postgres: string; readonly schema?: string }
  | { readonly url: string; readonly schema?: string }
  | { readonly nats: string; readonly stream?: string; readonly subjectPrefix?: string };

/** An `Aggregate` subclass (anything with `new (id)` and static `fromEvents`). */
export interface AggregateClassLike {
  fromEvents(id: string, events: Iterable<RecordedEvent>): object;
}

/** How the event browser folds a stream into state for time travel. */
export type AggregateView =
  | {
      /** Streams `<streamPrefix>-<id>` hold this aggregate (as `Repository`'s `streamPrefix`). */
      readonly streamPrefix: string;
      readonly aggregate: AggregateClassLike;
      /** The state to show; default: `toSnapshot()` if the aggregate has it, else its own fields. */
      readonly state?: (aggregate: object) => unknown;
    }
  | {
      readonly streamPrefix: string;
      readonly initialState: () => unknown;
      readonly evolve: (state: unknown, event: RecordedEvent) => unknown;
    };

/** What `eventfold.config.mjs` exports (as its default export, or as named exports). */
export interface EventfoldConfig {
  readonly store?: StoreSetting;
  /**
   * Where the projection runners keep their checkpoints when not in the store: the read model's
   * SQLite file, a postgres:// URL (`{ postgres, schema }`), or `{ natsKv: bucket }`.
   */
  readonly checkpoints?: CheckpointSetting;
  readonly projections?: readonly Projection<AnyEvent, never>[];
  readonly aggregates?: readonly AggregateView[];
}

export interface LoadedConfig {
  readonly path: string | undefined;
  readonly config: EventfoldConfig;
}

export const DEFAULT_CONFIG_FILES = ['eventfold.config.mjs', 'eventfold.config.js', 'eventfold.config.cjs'] as const;

function describeType(value: unknown): string {
  return Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;
}

/**
 * Loads the configuration: the `--config` file, else the first default file in the working
 * directory, else nothing (an empty configuration). A given file that does not exist, fails to
 * import or exports the wrong shape is a usage error.
 */
export async function loadConfig(explicitPath: string | undefined, cwd: string): Promise<LoadedConfig> {
  let path: string | undefined;
  if (explicitPath !== undefined) {
    path = isAbsolute(explicitPath) ? explicitPath : resolve(cwd, explicitPath);
    if (!existsSync(path)) throw new CliUsageError(`The configuration file '${explicitPath}' does not exist.`);
  } else {
    path = DEFAULT_CONFIG_FILES.map((name) => resolve(cwd, name)).find((candidate) => existsSync(candidate));
  }
  if (path === undefined) return { path: undefined, config: {} };
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new CliUsageError(`Cannot load the configuration file '${path}': ${reason}`, { cause: error });
  }
  const candidate = (loaded['default'] ?? loaded) as unknown;
  const config = (typeof candidate === 'function' ? await (candidate as () => unknown)() : candidate) as unknown;
  return { path, config: validateConfig(config, path) };
}

export function validateConfig(config: unknown, path: string): EventfoldConfig {
  if (typeof config !== 'object' || config === null) {
    throw new CliUsageError(`The configuration file '${path}' must export an object, got ${describeType(config)}.`);
  }
  const { store, projections, aggregates, checkpoints } = config as Record<string, unknown>;
  if (checkpoints !== undefined && typeof checkpoints !== 'string' && (typeof checkpoints !== 'object' || checkpoints === null)) {
    throw new CliUsageError(`'checkpoints' in '${path}' must be a SQLite path, a URL, { sqlite }, { postgres, schema } or { natsKv }.`);
  }
  if (store !== undefined && typeof store !== 'string' && (typeof store !== 'object' || store === null)) {
    throw new CliUsageError(`'store' in '${path}' must be a path, a URL or { sqlite } / { postgres, schema }.`);
  }
  if (projections !== undefined) {
    if (!Array.isArray(projections)) throw new CliUsageError(`'projections' in '${path}' must be an array of defineProjection(...) results.`);
    for (const projection of projections as unknown[]) {
      const p = projection as Partial<Projection<AnyEvent, unknown>> | null;
      if (typeof p !== 'object' || p === null || typeof p.name !== 'string' || typeof p.handlers !== 'object') {
        throw new CliUsageError(`Every entry of 'projections' in '${path}' must be a defineProjection(...) result.`);
      }
    }
  }
  if (aggregates !== undefined) {
    if (!Array.isArray(aggregates)) throw new CliUsageError(`'aggregates' in '${path}' must be an array.`);
    for (const view of aggregates as unknown[]) {
      const v = view as Record<string, unknown> | null;
      const ok =
        typeof v === 'object' &&
        v !== null &&
        typeof v['streamPrefix'] === 'string' &&
        (typeof (v['aggregate'] as { fromEvents?: unknown } | undefined)?.fromEvents === 'function' ||
          (typeof v['initialState'] === 'function' && typeof v['evolve'] === 'function'));
      if (!ok) {
        throw new CliUsageError(
          `Every entry of 'aggregates' in '${path}' needs a streamPrefix and either an Aggregate class ('aggregate') or 'initialState' and 'evolve'.`,
        );
      }
    }
  }
  return config as EventfoldConfig;
}

/**
 * Loads aggregate views from a module of their own (`eventfold inspect --aggregates <file>`): its
 * `aggregates` export, or its default export (an array, or an object with `aggregates`).
 */
export async function loadAggregatesModule(file: string, cwd: string): Promise<readonly AggregateView[]> {
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  if (!existsSync(path)) throw new CliUsageError(`The aggregates module '${file}' does not exist.`);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new CliUsageError(`Cannot load the aggregates module '${path}': ${reason}`, { cause: error });
  }
  const fallback = loaded['default'] as unknown;
  const views =
    loaded['aggregates'] ?? (Array.isArray(fallback) ? fallback : (fallback as { aggregates?: unknown } | undefined)?.aggregates);
  if (views === undefined) throw new CliUsageError(`The aggregates module '${path}' exports no 'aggregates' (nor a default array).`);
  return validateConfig({ aggregates: views }, path).aggregates ?? [];
}
