import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { resolveListStreamsOptions, type EventStoreCatalog, type ListStreamsOptions, type StreamSummary } from '../store/catalog.js';
import type { EventStore } from '../store/event-store.js';
import { CliUsageError } from './errors.js';

/** What the catalog needs of a `NatsEventStore` (kept structural so the core never imports the adapter). */
export interface NatsCatalogSource {
  readonly store: EventStore;
  readonly connection: NatsConnection;
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly jetstreamManager: (connection: NatsConnection) => Promise<JetStreamManager>;
  readonly decodeStreamToken: (token: string) => string;
}

/** Code point order (UTF-8 byte order), as SQLite's BINARY collation and PostgreSQL's "C". */
function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Lists a NATS store's streams: JetStream's per-subject message counts name the streams (one
 * subject per stream, `<prefix>.s.<token>`), and each listed stream's last event (one backwards
 * read) gives its version, position and time. Costs one stream-info request (paged by the client)
 * plus one read per stream returned, so it suits tools, not hot paths.
 */
export function natsCatalog(source: NatsCatalogSource): EventStoreCatalog {
  return {
    async listStreams(options?: ListStreamsOptions): Promise<StreamSummary[]> {
      const { prefix, after, limit } = resolveListStreamsOptions(options);
      const jsm = await source.jetstreamManager(source.connection);
      const base = `${source.subjectPrefix}.s.`;
      let info: Awaited<ReturnType<JetStreamManager['streams']['info']>>;
      try {
        info = await jsm.streams.info(source.stream, { subjects_filter: `${base}>` });
      } catch (error) {
        if (error instanceof Error && /stream not found/i.test(error.message)) {
          throw new CliUsageError(`The JetStream stream '${source.stream}' does not exist. Create it with: eventfold migrate --db <nats url>`, {
            cause: error,
          });
        }
        throw error;
      }
      const ids = Object.keys(info.state.subjects ?? {})
        .map((subject) => source.decodeStreamToken(subject.slice(base.length)))
        .filter((id) => id.startsWith(prefix) && (after === undefined || compareCodePoints(id, after) > 0))
        .sort(compareCodePoints)
        .slice(0, limit);
      const summaries: StreamSummary[] = [];
      for (const streamId of ids) {
        const [last] = await source.store.readStream(streamId, { backwards: true, limit: 1 }).toArray();
        if (last === undefined) continue;
        summaries.push(Object.freeze({ streamId, version: last.version, lastPosition: last.position, lastWrittenAt: last.recordedAt }));
      }
      return summaries;
    },
  };
}
