// Opens the snapshot store a process uses: Redis when REDIS_ENABLED, else the directory
// (PROMETHEUS_MULTIPROC_DIR). The primary prepares the directory once (safety checks, stale files);
// workers and the sidecar only open it.

import type { Settings } from '../config/types.js';
import { DirectoryStore, type StoreLog } from './directory-store.js';
import { RedisStore, resolveTarget } from './redis-store.js';
import type { SnapshotStore } from './store.js';

export function redisOptions(s: Settings, ppid: number, log: StoreLog, instance = s.metricsInstance) {
  return {
    url: s.redisUrl,
    host: s.redisHost,
    port: s.redisPort,
    db: s.redisDb,
    password: s.redisPassword,
    prefix: s.redisKeyPrefix,
    instance,
    ppid,
    log,
  };
}

/** In a worker: the store its primary prepared. */
export async function openStore(settings: Settings, ppid: number, log: StoreLog): Promise<SnapshotStore> {
  if (settings.redisEnabled) return new RedisStore(redisOptions(settings, ppid, log));
  return new DirectoryStore(settings.multiprocDir, { ppid });
}

/** In the primary, at start: the directory is created private and refused when unsafe; Redis creates no file. */
export function prepareStore(settings: Settings, ppid: number, log: StoreLog): SnapshotStore {
  if (settings.redisEnabled) return new RedisStore(redisOptions(settings, ppid, log));
  return DirectoryStore.prepare(settings.multiprocDir, { ppid, log });
}

/** Checks the Redis settings (URL, port, db) at configuration time, before anything starts. Throws PROMFORK_ERR_REDIS_CONFIG. */
export function checkStoreSettings(settings: Settings): void {
  if (settings.metrics && settings.redisEnabled) resolveTarget(redisOptions(settings, 0, { warning: () => {} }));
}
