import type { Aggregate } from '../aggregate/aggregate.js';
import type { AnyEvent } from '../events/types.js';
import type { Repository } from '../repository/repository.js';
import { ATTR, Telemetry, type TelemetryOptions } from './telemetry.js';

/**
 * Returns the repository with a span around `load`, `find`, `save` and `update` (aggregate type,
 * id, the version loaded or saved, the conflict outcome). Pair it with `instrumentEventStore` on
 * the store it uses to see the appends and reads as child spans.
 */
export function instrumentRepository<R extends Repository<Aggregate<AnyEvent>>>(
  repository: R,
  options: TelemetryOptions & { readonly aggregateType?: string } = {},
): R {
  const t = new Telemetry(options);
  const type = options.aggregateType;
  const base = (operation: string, id: unknown) => ({
    [ATTR.operation]: operation,
    [ATTR.aggregateId]: String(id),
    ...(type === undefined ? {} : { [ATTR.aggregateType]: type }),
  });
  const versionOf = (aggregate: unknown): number | undefined =>
    typeof (aggregate as { version?: unknown } | undefined)?.version === 'number' ? (aggregate as { version: number }).version : undefined;
  const traced =
    (operation: 'load' | 'find' | 'save' | 'update') =>
    (...args: unknown[]): Promise<unknown> => {
      const subject = operation === 'save' ? (args[0] as { id?: unknown } | undefined)?.id : args[0];
      const method = (repository as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[operation]!;
      if (!t.active) return method.apply(repository, args);
      return t.span(`eventfold repository.${operation}`, base(operation, subject), () => method.apply(repository, args), (span, result) => {
        const version = versionOf(operation === 'save' ? args[0] : result);
        if (version !== undefined) span.setAttribute(ATTR.version, version);
      });
    };
  const replaced: Record<PropertyKey, unknown> = { load: traced('load'), find: traced('find'), save: traced('save'), update: traced('update') };
  return new Proxy(repository, {
    get(target, property) {
      if (Object.prototype.hasOwnProperty.call(replaced, property)) return replaced[property];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
