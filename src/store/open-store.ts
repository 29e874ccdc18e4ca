// Opens the snapshot store a process uses: Redis when REDIS_ENABLED, else the directory
// (PROMETHEUS_MULTIPROC_DIR). The primary prepares the directory once (safety checks, stale files,
// prepare-store.ts); workers and the sidecar only open it. A worker with the directory store never loads
// the Redis client (it costs several MiB per worker).

import type { Settings } from '../config/types.js';
import { DirectoryStore, type StoreLog } from './directory-store.js';
import type { SnapshotStore } from './store.js';

export function redisOptions(s: Settings, ppid: number, log: StoreLog, instance = s.metricsInstance) {
  return {
    url: s.redisUrl,
    host: s.redisHost,
    port: s.redisPort,
    db: s.redisDb,
    password: s.redisPassword,
    sentinelMaster: s.redisSentinelMaster,
    sentinelPassword: s.redisSentinelPassword,
    cluster: s.redisCluster,
    prefix: s.redisKeyPrefix,
    instance,
    ppid,
    log,
  };
}

/** In a worker: the store its primary prepared. */
export async function openStore(settings: Settings, ppid: number, log: StoreLog): Promise<SnapshotStore> {
  if (settings.redisEnabled) {
    const { RedisStore } = await import('./redis-store.js');
    return new RedisStore(redisOptions(settings, ppid, log));
  }
  return new DirectoryStore(settings.multiprocDir, { ppid });
}

/**
 * Checks the Redis settings (URL forms, port, db) at configuration time, before anything starts. Throws
 * PROMFORK_ERR_REDIS_CONFIG. The Redis client is loaded only when Redis is the store.
 */
export async function checkStoreSettings(settings: Settings): Promise<void> {
  if (!settings.metrics || !settings.redisEnabled) return;
  const { resolveRedisTarget } = await import('./redis-connection.js');
  resolveRedisTarget(redisOptions(settings, 0, { warning: () => {} }));
}
