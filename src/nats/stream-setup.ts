import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { JetStreamApiError } from '@nats-io/jetstream';
import { NatsStreamConfigError } from './errors.js';
import { DUPLICATE_WINDOW_MS, type ResolvedStreamOptions } from './options.js';

const NS_PER_MS = 1_000_000;

/** The stream eventfold creates: keep everything, forever, immutable, deduplicated for 2 minutes. */
export function streamConfig(options: ResolvedStreamOptions): Partial<StreamConfig> & { name: string } {
  // Only fields nats-server 2.9 knows: newer ones would be refused or ignored there.
  return {
    name: options.stream,
    subjects: options.allowPruning ? [options.eventSubjects, options.rewriteSubjects] : [options.eventSubjects],
    retention: 'limits' as StreamConfig['retention'],
    storage: options.storage as StreamConfig['storage'],
    num_replicas: options.replicas,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msgs_per_subject: -1,
    discard: 'old' as StreamConfig['discard'],
    duplicate_window: DUPLICATE_WINDOW_MS * NS_PER_MS,
    // Pruning erases messages (securely); without it the stream refuses every delete.
    deny_delete: !options.allowPruning,
    deny_purge: true,
    allow_rollup_hdrs: false,
  };
}

/** What makes an existing stream unusable: each entry names a setting and what it must be. */
export function incompatibilities(info: StreamInfo, options: ResolvedStreamOptions, retryWindowMs: number): string[] {
  const config = info.config;
  const problems: string[] = [];
  if (!(config.subjects ?? []).includes(options.eventSubjects)) {
    problems.push(`its subjects ${JSON.stringify(config.subjects ?? [])} do not include '${options.eventSubjects}'`);
  }
  if (config.retention !== 'limits') problems.push(`retention is '${config.retention}', must be 'limits' (other policies delete events)`);
  for (const limit of ['max_msgs', 'max_bytes', 'max_msgs_per_subject'] as const) {
    const value = config[limit];
    if (typeof value === 'number' && value > 0) problems.push(`${limit} is ${value}, must be unlimited (-1): a limit drops events`);
  }
  if (typeof config.max_age === 'number' && config.max_age > 0) problems.push(`max_age is set, must be 0: an age limit drops events`);
  if (config.storage !== options.storage) problems.push(`storage is '${config.storage}', the store is configured for '${options.storage}'`);
  if (config.num_replicas !== options.replicas) {
    problems.push(`it has ${config.num_replicas} replica(s), the store is configured for ${options.replicas}`);
  }
  const windowMs = (config.duplicate_window ?? 0) / NS_PER_MS;
  if (windowMs < retryWindowMs) {
    problems.push(`its duplicate window (${windowMs} ms) is shorter than the store's retry window (${retryWindowMs} ms)`);
  }
  if (config.sealed === true) problems.push('it is sealed (read-only)');
  if (options.allowPruning) {
    if (config.deny_delete !== false) problems.push('it denies deletes (allowPruning needs a stream created with it: JetStream cannot lift deny_delete)');
    if (!(config.subjects ?? []).includes(options.rewriteSubjects)) problems.push(`its subjects do not include '${options.rewriteSubjects}' (needed by allowPruning)`);
  }
  return problems;
}

/**
 * Creates the stream, or checks an existing one. Idempotent; never changes an existing stream:
 * one with settings that could lose events or break the mapping is a `NatsStreamConfigError`.
 */
export async function ensureStream(jsm: JetStreamManager, options: ResolvedStreamOptions, retryWindowMs: number): Promise<StreamInfo> {
  let info = await findStream(jsm, options.stream);
  if (info === undefined) {
    try {
      info = await jsm.streams.add(streamConfig(options));
    } catch (error) {
      // Another process created it first (same name, maybe other settings): check it as found.
      info = await findStream(jsm, options.stream);
      if (info === undefined) throw error;
    }
  }
  const problems = incompatibilities(info, options, retryWindowMs);
  if (problems.length > 0) throw new NatsStreamConfigError(options.stream, problems);
  return info;
}

export async function findStream(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === 10059) return undefined;
    throw error;
  }
}
