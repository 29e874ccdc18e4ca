// `promfork/redis`: the Redis API of the Python Gunicorn Prometheus Exporter, mapped onto promfork's store design (docs/storage.md):
// - RedisStorageManager, setupRedisMetrics, teardownRedisMetrics, getRedisStorageManager: the process's
//   Redis store (the same RedisStore the workers and the primary use), set up from the REDIS_* settings.
// - RedisStorageClient: run-independent key maintenance (cleanupProcessKeys) on a node-redis client.
// - RedisDict and RedisStorageDict: ONE role here (a namespaced Redis hash of numbers), exported under both
//   its names. RedisValue: one number in such a hash (inc/set/get).
// - RedisMultiProcessCollector: reads every snapshot of the store and merges it (the sidecar's reader).
// These are for custom, off-request-path uses: promfork's own metrics never touch Redis on a request.

import { defaultSettings } from './config/settings.js';
import type { Settings } from './config/types.js';
import { SidecarSource } from './exporter/sidecar.js';
import { redisOptions } from './store/open-store.js';
import { RedisStore, type RedisCommands } from './store/redis-store.js';

interface Log {
  info(msg: string): void;
  warning(msg: string): void;
  error(msg: string, err?: unknown): void;
}

const consoleLog: Log = {
  info: (m) => console.error(m),
  warning: (m) => console.error(m),
  error: (m, e) => console.error(m, e instanceof Error ? e.message : (e ?? '')),
};

export class RedisStorageManager {
  private store: RedisStore | null = null;
  private ready = false;
  readonly settings: Settings;

  constructor(settings?: Settings, private readonly log: Log = consoleLog) {
    this.settings = settings ?? defaultSettings(process.env);
  }

  /** Connect the store of this process (the primary's run when called from a worker); false when disabled or unreachable. */
  async setup(ppid: number = process.ppid && process.send ? process.ppid : process.pid): Promise<boolean> {
    if (!this.settings.redisEnabled) {
      this.log.info('Redis storage is not enabled (REDIS_ENABLED is not true): using the directory store');
      return false;
    }
    this.store ??= new RedisStore(redisOptions(this.settings, ppid, this.log));
    try {
      if (!this.store.client.isReady) await this.store.readRetired(); // connects, or rejects naming the setting
      this.ready = true;
      this.log.info(`Redis storage ready at ${this.store.target}`);
    } catch (err) {
      this.ready = false;
      this.log.error(`Redis storage not reachable: ${(err as Error).message}`);
    }
    return this.ready;
  }

  isEnabled(): boolean {
    return this.settings.redisEnabled && this.ready;
  }

  /** The node-redis client, or null before setup() or when Redis is disabled. */
  getClient(): RedisStore['client'] | null {
    return this.store?.client ?? null;
  }

  getStore(): RedisStore | null {
    return this.store;
  }

  async teardown(): Promise<void> {
    this.ready = false;
    const store = this.store;
    this.store = null;
    await store?.close();
  }
}

let manager: RedisStorageManager | null = null;

export function getRedisStorageManager(): RedisStorageManager {
  manager ??= new RedisStorageManager();
  return manager;
}

export function setupRedisMetrics(): Promise<boolean> {
  return getRedisStorageManager().setup();
}

export async function teardownRedisMetrics(): Promise<void> {
  await manager?.teardown();
  manager = null;
}

/** Key maintenance on a node-redis client, for keys under `keyPrefix` (all instances and runs). */
export class RedisStorageClient {
  constructor(
    private readonly client: RedisCommands,
    private readonly keyPrefix = 'gunicorn',
  ) {}

  /** Remove every snapshot key of worker `pid` (and its index entries); returns how many keys were deleted. */
  async cleanupProcessKeys(pid: number): Promise<number> {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = (await this.client.sendCommand(['SCAN', cursor, 'MATCH', `${this.keyPrefix}:{*}:w:${pid}`, 'COUNT', '500'])) as [string, string[]];
      cursor = next;
      for (const key of keys) {
        const index = `${key.slice(0, key.lastIndexOf(':w:'))}:workers`;
        deleted += Number(await this.client.sendCommand(['DEL', key]));
        await this.client.sendCommand(['SREM', index, String(pid)]);
      }
    } while (cursor !== '0');
    return deleted;
  }

  getValueClass(): typeof RedisValue {
    return RedisValue;
  }
}

/** A namespaced Redis hash of numbers (the Python exporter's RedisDict and RedisStorageDict, one role here). */
export class RedisDict {
  readonly key: string;

  constructor(
    private readonly client: RedisCommands,
    keyPrefix = 'gunicorn',
    name = 'values',
  ) {
    this.key = `${keyPrefix}:dict:${name}`;
  }

  async get(field: string): Promise<number | null> {
    const v = await this.client.sendCommand(['HGET', this.key, field]);
    return v === null || v === undefined ? null : Number(v);
  }

  async set(field: string, value: number): Promise<void> {
    await this.client.sendCommand(['HSET', this.key, field, String(value)]);
  }

  async inc(field: string, amount = 1): Promise<number> {
    return Number(await this.client.sendCommand(['HINCRBYFLOAT', this.key, field, String(amount)]));
  }

  async delete(field: string): Promise<void> {
    await this.client.sendCommand(['HDEL', this.key, field]);
  }

  async keys(): Promise<string[]> {
    return (await this.client.sendCommand(['HKEYS', this.key])) as string[];
  }
}

export { RedisDict as RedisStorageDict };

/** One number in a RedisDict: the Python exporter's RedisValue (inc, set, get). */
export class RedisValue {
  constructor(
    private readonly dict: RedisDict,
    readonly metricName: string,
  ) {}

  inc(amount = 1): Promise<number> {
    return this.dict.inc(this.metricName, amount);
  }

  set(value: number): Promise<void> {
    return this.dict.set(this.metricName, value);
  }

  get(): Promise<number | null> {
    return this.dict.get(this.metricName);
  }
}

/** Collects and merges every snapshot in Redis (this instance, or all with allInstances), as the sidecar does. */
export class RedisMultiProcessCollector {
  private readonly source: SidecarSource;

  constructor(settings?: Partial<Settings>, log: Log = consoleLog) {
    this.source = new SidecarSource({ ...defaultSettings(process.env), ...settings, redisEnabled: true }, log);
  }

  /** The exposition text: Prometheus 0.0.4, or OpenMetrics. */
  async metrics(format: 'prometheus' | 'openmetrics' = 'prometheus'): Promise<string> {
    return (await this.source.collect(format)).body;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
