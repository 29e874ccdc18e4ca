// The Python exporter's Redis configuration examples started for real, and its Redis API (promfork/redis)
// against a real redis-server.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createClient } from 'redis';
import { ROOT, request, startServer } from '../helpers/server.js';
import { startRedis } from '../helpers/redis.js';
import { scrape, sum } from '../helpers/metrics.js';
import {
  RedisDict,
  RedisMultiProcessCollector,
  RedisStorageClient,
  RedisStorageDict,
  RedisStorageManager,
  RedisValue,
  getRedisStorageManager,
  setupRedisMetrics,
  teardownRedisMetrics,
} from '../../src/redis.js';
import { defaultSettings } from '../../src/config/settings.js';

const PLAIN = path.join(ROOT, 'examples', 'plain.js');
const quiet = { info: () => {}, warning: () => {}, error: () => {} };

for (const example of ['promfork.redis.config.js', 'promfork.redis-backend.config.js']) {
  test(`examples/${example} stores metrics in Redis, creates no file, and serves them`, async () => {
    const redis = await startRedis();
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-redis-ex-')), 'must-not-exist');
    const { server, url, metricsUrl } = await startServer(['-c', path.join(ROOT, 'examples', example), '-b', '127.0.0.1:0', PLAIN], {
      env: {
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(redis.port),
        PROMETHEUS_METRICS_PORT: '0',
        PROMETHEUS_BIND_ADDRESS: '127.0.0.1',
        PROMETHEUS_MULTIPROC_DIR: dir,
        PROMFORK_INSTANCE: 'example-host',
      },
      waitWorkers: example.includes('backend') ? 4 : 2,
    });
    await server.waitFor(/Redis storage ready at redis:\/\/127\.0\.0\.1:\d+/);
    for (let i = 0; i < 5; i++) assert.equal((await request(`${url}/users/${i}`)).status, 200);
    assert.equal(sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total'), 5);
    const keys = JSON.parse(await redis.cli('KEYS', '*')) as string[];
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith(`gunicorn:{example-host:${server.pid}}:`)), keys.join(' '));
    assert.equal(existsSync(dir), false, 'no file is created in Redis mode');
  });
}

test('RedisStorageManager: setup, isEnabled, getClient, teardown; disabled without REDIS_ENABLED', async () => {
  const redis = await startRedis();
  const settings = { ...defaultSettings({}), redisEnabled: true, redisHost: '127.0.0.1', redisPort: redis.port };
  const m = new RedisStorageManager(settings, quiet);
  assert.equal(m.isEnabled(), false);
  assert.equal(await m.setup(), true);
  assert.equal(m.isEnabled(), true);
  assert.equal(await m.getClient()!.ping(), 'PONG');
  await m.teardown();
  assert.equal(m.isEnabled(), false);
  assert.equal(m.getClient(), null);
  const off = new RedisStorageManager({ ...defaultSettings({}), redisEnabled: false }, quiet);
  assert.equal(await off.setup(), false);
  assert.equal(off.isEnabled(), false);
  // The process-wide manager reads the environment.
  process.env.REDIS_ENABLED = 'true';
  process.env.REDIS_HOST = '127.0.0.1';
  process.env.REDIS_PORT = String(redis.port);
  try {
    assert.equal(await setupRedisMetrics(), true);
    assert.equal(getRedisStorageManager().isEnabled(), true);
    await teardownRedisMetrics();
  } finally {
    delete process.env.REDIS_ENABLED;
    delete process.env.REDIS_HOST;
    delete process.env.REDIS_PORT;
  }
});

test('an unreachable Redis: setup() is false and the error names the address', async () => {
  const redis = await startRedis();
  const port = redis.port;
  await redis.stop();
  const errors: string[] = [];
  const m = new RedisStorageManager({ ...defaultSettings({}), redisEnabled: true, redisHost: '127.0.0.1', redisPort: port }, {
    ...quiet,
    error: (msg: string) => errors.push(msg),
  });
  assert.equal(await m.setup(), false);
  assert.match(errors.join('\n'), new RegExp(`127\\.0\\.0\\.1:${port}`));
  await m.teardown();
});

test('RedisDict / RedisStorageDict / RedisValue and RedisStorageClient.cleanupProcessKeys', async () => {
  const redis = await startRedis();
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    assert.equal(RedisStorageDict, RedisDict);
    const dict = new RedisDict(client, 'gunicorn');
    const value = new RedisValue(dict, 'requests_total');
    assert.equal(await value.get(), null);
    assert.equal(await value.inc(), 1);
    assert.equal(await value.inc(2.5), 3.5);
    await value.set(10);
    assert.equal(await value.get(), 10);
    assert.deepEqual(await dict.keys(), ['requests_total']);
    // cleanupProcessKeys removes worker 4242's snapshot keys of every run, and nothing else.
    await client.set('gunicorn:{h1:100}:w:4242', '{}');
    await client.sAdd('gunicorn:{h1:100}:workers', '4242');
    await client.set('gunicorn:{h2:200}:w:4242', '{}');
    await client.set('gunicorn:{h1:100}:w:4243', '{}');
    const storage = new RedisStorageClient(client, 'gunicorn');
    assert.equal(storage.getValueClass(), RedisValue);
    assert.equal(await storage.cleanupProcessKeys(4242), 2);
    assert.deepEqual((await client.keys('gunicorn:*:w:*')).sort(), ['gunicorn:{h1:100}:w:4243']);
    assert.deepEqual(await client.sMembers('gunicorn:{h1:100}:workers'), []);
  } finally {
    await client.quit();
  }
});

test('RedisMultiProcessCollector merges what a running server stored', async () => {
  const redis = await startRedis();
  const { url } = await startServer([PLAIN, '-w', '2', '--redis', '--redis-host', '127.0.0.1', '--redis-port', String(redis.port), '--metrics-instance', 'pod-x']);
  for (let i = 0; i < 7; i++) await request(`${url}/`);
  const collector = new RedisMultiProcessCollector({ redisHost: '127.0.0.1', redisPort: redis.port, metricsInstance: 'pod-x' }, quiet);
  try {
    // The workers persist on a 1 s timer (no scrape asks them here): poll until all 7 are stored.
    const deadline = Date.now() + 10_000;
    let text = '';
    while (Date.now() < deadline) {
      text = await collector.metrics();
      if (/gunicorn_worker_requests_total\{worker_id="worker_0"\} (\d+)/.test(text) && totalRequests(text) === 7) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(totalRequests(text), 7);
  } finally {
    await collector.close();
  }
});

function totalRequests(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/^gunicorn_worker_requests_total\{[^}]*\} (\d+)$/gm)) total += Number(m[1]);
  return total;
}
