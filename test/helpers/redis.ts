// A real Redis for the tests (test/helpers/redis-server.ts, test/helpers/redis-topology.ts): one server, a Redis
// Cluster or a Sentinel set-up. Everything a test file started is stopped by pid when the file ends (a root-level
// `after`, registered at import), and killed by pid if the runner exits first.

import { after } from 'node:test';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { startRedisCluster, startRedisSentinel, type RedisCluster, type RedisSentinelSetup } from './redis-topology.js';

export { REDIS_SERVER, type RedisServer } from './redis-server.js';
export { keySlot, type RedisCluster, type RedisSentinelSetup } from './redis-topology.js';

const started = new Set<{ stop(): Promise<void> }>();

after(async () => {
  await Promise.all([...started].map((r) => r.stop()));
});

export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const r = await startRedisServer(opts);
  started.add(r);
  return r;
}

export async function startCluster(opts: Parameters<typeof startRedisCluster>[0] = {}): Promise<RedisCluster> {
  const c = await startRedisCluster(opts);
  started.add(c);
  return c;
}

export async function startSentinel(opts: Parameters<typeof startRedisSentinel>[0] = {}): Promise<RedisSentinelSetup> {
  const s = await startRedisSentinel(opts);
  started.add(s);
  return s;
}
