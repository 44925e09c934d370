/**
 * The `recordedAt` of recorded events. Stores share one instance between the events of an append
 * (and the in-memory store between appends of the same millisecond), so a Date that could be
 * changed in place would let one reader's `setHours()` rewrite other events' history. Every
 * mutator of this Date throws; read it like any Date, copy it (`new Date(d)`) to change it.
 */
export class FrozenDate extends Date {}

const MUTATORS = [
  'setDate',
  'setFullYear',
  'setHours',
  'setMilliseconds',
  'setMinutes',
  'setMonth',
  'setSeconds',
  'setTime',
  'setUTCDate',
  'setUTCFullYear',
  'setUTCHours',
  'setUTCMilliseconds',
  'setUTCMinutes',
  'setUTCMonth',
  'setUTCSeconds',
  'setYear',
] as const;

for (const name of MUTATORS) {
  Object.defineProperty(FrozenDate.prototype, name, {
    value: function immutable(): never {
      throw new TypeError(`recordedAt is immutable: ${name}() is not allowed. Copy it first: new Date(event.recordedAt).`);
    },
    writable: false,
    enumerable: false,
    configurable: false,
  });
}
Object.freeze(FrozenDate.prototype);

/** A frozen Date for `ms` milliseconds since the epoch. */
export function frozenDate(ms: number): Date {
  return Object.freeze(new FrozenDate(ms));
}
