import { sanitizeText } from './sanitize.js';

/**
 * Colour for people, plain text for pipes: on when stdout is a terminal, off with NO_COLOR (any
 * non-empty value), `--no-color` or TERM=dumb; FORCE_COLOR (non-empty, not 0) turns it on anyway.
 */
export function colourEnabled(env: NodeJS.ProcessEnv, isTTY: boolean, noColorFlag: boolean): boolean {
  if (noColorFlag) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0') return true;
  if (env['TERM'] === 'dumb') return false;
  return isTTY;
}

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
  gray: [90, 39],
} as const;

export type StyleName = keyof typeof CODES;

/**
 * Paints text. Every function sanitizes its input first, so stored text can never carry an
 * escape sequence of its own; the only escapes in the output are the ones added here.
 */
export type Style = { readonly [K in StyleName]: (text: string) => string } & {
  readonly enabled: boolean;
  /** Sanitized, unpainted. */
  readonly plain: (text: string) => string;
  /** Several styles at once, e.g. `paint(['bold', 'yellow'], text)`. */
  readonly paint: (names: readonly StyleName[], text: string) => string;
};

export function createStyle(enabled: boolean): Style {
  const paint = (name: StyleName) => {
    const [open, close] = CODES[name];
    return enabled
      ? (text: string): string => `\u001b[${open}m${sanitizeText(text)}\u001b[${close}m`
      : (text: string): string => sanitizeText(text);
  };
  const paintMany = (names: readonly StyleName[], text: string): string => {
    if (!enabled) return sanitizeText(text);
    const open = names.map((name) => `\u001b[${CODES[name][0]}m`).join('');
    const close = names.map((name) => `\u001b[${CODES[name][1]}m`).reverse().join('');
    return `${open}${sanitizeText(text)}${close}`;
  };
  const style = { enabled, plain: (text: string) => sanitizeText(text), paint: paintMany } as Record<string, unknown>;
  for (const name of Object.keys(CODES) as StyleName[]) style[name] = paint(name);
  return style as Style;
}
