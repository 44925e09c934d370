import type { RecordedEvent } from '../events/types.js';
import { safeJsonStringify, sanitizeStreamId } from './sanitize.js';
import type { Style } from './style.js';

/** The JSON form of an event for `--json` output (one object per line). */
export function eventJson(event: RecordedEvent): Record<string, unknown> {
  return {
    streamId: event.streamId,
    version: event.version,
    position: event.position,
    type: event.type,
    eventId: event.eventId,
    recordedAt: event.recordedAt.toISOString(),
    data: event.data,
    metadata: event.metadata,
  };
}

function hasMetadata(event: RecordedEvent): boolean {
  return typeof event.metadata === 'object' && event.metadata !== null && Object.keys(event.metadata).length > 0;
}

/** Indents safe JSON for people; every line is sanitized (strings keep `\uXXXX` escapes). */
function indentedJson(value: unknown, indent: string, style: Style): string[] {
  return safeJsonStringify(value, 2)
    .split('\n')
    .map((line) => `${indent}${colourJsonLine(line, style)}`);
}

/** Keys in blue, strings in green; the line is already free of control characters. */
function colourJsonLine(line: string, style: Style): string {
  if (!style.enabled) return line;
  return line.replace(/("(?:[^"\\]|\\.)*")(\s*:)?/g, (_match, text: string, colon: string | undefined) =>
    colon !== undefined ? `${style.blue(text)}${colon}` : style.green(text),
  );
}

/** A readable block for one event: a header line, then data (and metadata when there is any). */
export function formatEventBlock(event: RecordedEvent, style: Style, options: { readonly showStream: boolean }): string[] {
  const where = options.showStream ? `${style.cyan(sanitizeStreamId(event.streamId))}${style.dim('@')}${event.version}` : `${style.cyan(`v${event.version}`)}`;
  const lines = [
    `${where}  ${style.paint(['bold', 'yellow'], event.type)}  ${style.dim(`#${event.position}`)}  ${style.gray(event.recordedAt.toISOString())}  ${style.gray(event.eventId)}`,
    ...indentedJson(event.data, '  ', style),
  ];
  if (hasMetadata(event)) {
    lines.push(`  ${style.dim('metadata')} ${colourJsonLine(safeJsonStringify(event.metadata), style)}`);
  }
  return lines;
}

/** One line per event, for `tail`. */
export function formatEventLine(event: RecordedEvent, style: Style): string {
  const data = safeJsonStringify(event.data);
  const shown = data.length > 200 ? `${data.slice(0, 199)}…` : data;
  return `${style.dim(`#${event.position}`)}  ${style.gray(event.recordedAt.toISOString())}  ${style.cyan(sanitizeStreamId(event.streamId))}${style.dim('@')}${event.version}  ${style.paint(['bold', 'yellow'], event.type)}  ${colourJsonLine(shown, style)}`;
}
