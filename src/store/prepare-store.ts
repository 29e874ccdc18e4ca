// In the primary, at start: the directory is created private and refused when unsafe; Redis creates no file.

import type { Settings } from '../config/types.js';
import { DirectoryStore, type StoreLog } from './directory-store.js';
import { redisOptions } from './open-store.js';
import { RedisStore } from './redis-store.js';
import type { SnapshotStore } from './store.js';

export function prepareStore(settings: Settings, ppid: number, log: StoreLog): SnapshotStore {
  if (settings.redisEnabled) return new RedisStore(redisOptions(settings, ppid, log));
  return DirectoryStore.prepare(settings.multiprocDir, { ppid, log });
}
