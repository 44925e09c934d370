/** One difference between two JSON values, at a path of object keys and array indexes. */
export interface JsonChange {
  readonly path: readonly (string | number)[];
  readonly kind: 'added' | 'removed' | 'changed';
  readonly before?: unknown;
  readonly after?: unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The changes that turn `before` into `after`: leaves that differ, keys added or removed. Arrays
 * are compared index by index. At most `limit` changes (a huge diff is cut, not slow).
 */
export function diffJson(before: unknown, after: unknown, limit = 500): JsonChange[] {
  const changes: JsonChange[] = [];
  const walk = (a: unknown, b: unknown, path: (string | number)[]): void => {
    if (changes.length >= limit) return;
    if (Object.is(a, b)) return;
    if (Array.isArray(a) && Array.isArray(b)) {
      const length = Math.max(a.length, b.length);
      for (let i = 0; i < length; i++) {
        if (i >= a.length) changes.push({ path: [...path, i], kind: 'added', after: b[i] });
        else if (i >= b.length) changes.push({ path: [...path, i], kind: 'removed', before: a[i] });
        else walk(a[i], b[i], [...path, i]);
        if (changes.length >= limit) return;
      }
      return;
    }
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const key of Object.keys(a)) {
        if (!Object.prototype.hasOwnProperty.call(b, key)) changes.push({ path: [...path, key], kind: 'removed', before: a[key] });
        else walk(a[key], b[key], [...path, key]);
        if (changes.length >= limit) return;
      }
      for (const key of Object.keys(b)) {
        if (!Object.prototype.hasOwnProperty.call(a, key)) changes.push({ path: [...path, key], kind: 'added', after: b[key] });
        if (changes.length >= limit) return;
      }
      return;
    }
    if (a === undefined) changes.push({ path, kind: 'added', after: b });
    else if (b === undefined) changes.push({ path, kind: 'removed', before: a });
    else changes.push({ path, kind: 'changed', before: a, after: b });
  };
  walk(before, after, []);
  return changes;
}

/** Applies changes from `diffJson(a, b)` to a copy of `a`; gives `b` back (the property tests use it). */
export function applyChanges(base: unknown, changes: readonly JsonChange[]): unknown {
  let root: unknown = structuredClone(base);
  const removals: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  for (const change of changes) {
    if (change.path.length === 0) {
      root = change.kind === 'removed' ? undefined : structuredClone(change.after);
      continue;
    }
    let parent = root as Record<string | number, unknown>;
    for (const key of change.path.slice(0, -1)) parent = ownValue(parent, key) as Record<string | number, unknown>;
    const last = change.path[change.path.length - 1]!;
    if (change.kind === 'removed') removals.push({ parent, key: last });
    // An own property even for a key such as "__proto__" (event data is anyone's input).
    else Object.defineProperty(parent, last, { value: structuredClone(change.after), writable: true, enumerable: true, configurable: true });
  }
  // Array removals come from the end (diffJson lists them in increasing index order).
  for (const { parent, key } of removals.reverse()) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Record<string, unknown>)[key as string];
  }
  return root;
}

function ownValue(parent: Record<string | number, unknown>, key: string | number): unknown {
  return Object.prototype.hasOwnProperty.call(parent, key) ? parent[key] : undefined;
}
