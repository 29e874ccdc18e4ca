// A real Redis for the tests (test/helpers/redis-server.ts): every server a test file started is stopped by pid when
// the file ends (a root-level `after`, registered at import), and killed by pid if the runner exits first.

import { after } from 'node:test';
import { startRedisServer, type RedisServer } from './redis-server.js';

export { REDIS_SERVER, type RedisServer } from './redis-server.js';

const started = new Set<RedisServer>();

after(async () => {
  await Promise.all([...started].map((r) => r.stop()));
});

export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const r = await startRedisServer(opts);
  started.add(r);
  return r;
}
