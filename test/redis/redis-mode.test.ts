// Redis mode end to end, against a real redis-server: exact sums on the primary's /metrics, no file created, keys
// namespaced by prefix, instance and run; and the cost: Redis commands do not grow with requests (a worker writes
// on its own schedule, bounded per second; the primary reads each write once and refreshes TTLs), so at steady load
// the commands per request are tiny.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis.js';
import { QUIET_SPACING_MS } from '../../src/metrics/prometheus-instrumentation.js';

function redisEnv(port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), ...extra };
}

/** A store directory path whose parent exists and which itself does not: it must still not exist afterwards. */
function absentDir(): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-redis-')), 'must-not-exist');
  assert.equal(existsSync(dir), false);
  return dir;
}

/** One GET through `agent` (keep-alive); its status. */
function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function keysOf(reply: string): string[] {
  return (JSON.parse(reply) as string[]).sort();
}

test('Redis mode: exact sums on /metrics, no file, keys namespaced prefix:{instance:ppid}', async () => {
  const redis = await startRedis();
  const dir = absentDir();
  const { server, url, metricsUrl } = await startServer(
    [APP, '-w', '2', '--metrics-instance', 'pod-a', '--multiproc-dir', dir],
    { env: redisEnv(redis.port, { REDIS_KEY_PREFIX: 'ptest' }) },
  );
  const plan = { ok: 23, thrown: 4, status503: 3 };
  const calls: Promise<{ status: number }>[] = [];
  for (let i = 0; i < plan.ok; i++) calls.push(request(`${url}/`));
  for (let i = 0; i < plan.thrown; i++) calls.push(request(`${url}/throw`));
  for (let i = 0; i < plan.status503; i++) calls.push(request(`${url}/status?code=503`));
  const statuses = (await Promise.all(calls)).map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, plan.ok);
  assert.equal(statuses.filter((s) => s === 500).length, plan.thrown);
  assert.equal(statuses.filter((s) => s === 503).length, plan.status503);
  const total = plan.ok + plan.thrown + plan.status503;

  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), total);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_count'), total);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_bucket', { le: '+Inf' }), total);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), plan.thrown + plan.status503);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'Error', endpoint: '/throw' }), plan.thrown);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'http_503', endpoint: '/status' }), plan.status503);
  assert.deepEqual(seriesOf(s, 'gunicorn_worker_requests_total').sort(), [
    'gunicorn_worker_requests_total{worker_id="worker_0"}',
    'gunicorn_worker_requests_total{worker_id="worker_1"}',
  ]);
  assert.equal(sum(s, 'promfork_store_up', { store: 'redis' }), 1);
  assert.equal(seriesOf(s, 'promfork_store_up').length, 1, 'only the redis store is reported');
  assert.equal(new Set(s.types).size, s.types.length, 'no family twice (docs/design.md, L6)');

  // Every key is this run's: `${prefix}:${instance}:${ppid}:`, with one snapshot per worker (and the index).
  const workers = server.workerPids();
  assert.equal(workers.length, 2);
  const base = `ptest:{pod-a:${server.pid}}:`;
  const keys = keysOf(await redis.cli('KEYS', '*'));
  for (const k of keys) assert.ok(k.startsWith(base), `key ${k} is not under ${base}`);
  for (const pid of workers) assert.ok(keys.includes(`${base}w:${pid}`), `no key for worker ${pid}: ${keys.join(' ')}`);
  assert.ok(keys.includes(`${base}workers`), keys.join(' '));
  // The snapshot keys expire by themselves (liveness TTL) if the server dies unseen.
  for (const pid of workers) assert.ok(Number(await redis.cli('PTTL', `${base}w:${pid}`)) > 0);

  // No file at all: the store directory was never created.
  assert.equal(existsSync(dir), false, `${dir} was created in Redis mode`);
  await server.stop();
  assert.equal(server.proc.exitCode, 0, server.output);
  assert.equal(existsSync(dir), false, `${dir} was created at exit`);
});

test('cost: at steady load the Redis commands per request are tiny and do not grow with requests', async () => {
  const redis = await startRedis();
  const WORKERS = 2;
  const FLUSH_S = 1; // --metrics-flush-interval, the default
  const { url, metricsUrl } = await startServer(
    [APP, '-w', String(WORKERS), '--metrics-flush-interval', String(FLUSH_S), '--multiproc-dir', absentDir()],
    { env: redisEnv(redis.port) },
  );
  // Warm up: connections open, every worker has flushed once.
  await Promise.all(Array.from({ length: 50 }, () => request(`${url}/`)));
  assert.equal(sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total'), 50);

  // No scrape in the window (a scrape asks every worker to flush): only the timers write.
  const N = 2000;
  const CONCURRENCY = 8;
  // Keep-alive connections, as a load balancer's: the rate stays near 1,000 req/s or more even on a busy machine.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const t0 = performance.now(); // the window spans both INFO calls
  const before = await redis.commandCalls();
  let next = 0;
  const statuses: number[] = [];
  try {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) {
          next++;
          statuses.push(await get(`${url}/`, agent));
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const after = await redis.commandCalls();
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(statuses.length, N);
  assert.deepEqual(new Set(statuses), new Set([200]));

  const delta: Record<string, number> = {};
  for (const [cmd, calls] of Object.entries(after)) {
    const d = calls - (before[cmd] ?? 0);
    if (d > 0 && cmd !== 'info') delta[cmd] = d; // `info` is the measurement itself
  }
  const commands = Object.values(delta).reduce((a, b) => a + b, 0);
  // The bound, from the timers alone (nothing per request):
  // - each worker writes on its own schedule: once per flush interval under traffic, and on a pause in the
  //   traffic (a busy machine makes short ones) at most every QUIET_SPACING_MS, so at most
  //   floor(seconds / spacing) + 2 writes (one whose commands were sent just before the window and landed inside
  //   it is the margin); a write is one pipeline of SET (with PX), SADD, PEXPIRE = 3 commands, and the primary
  //   reads each announced snapshot once (GET): 4 commands per write;
  // - the primary, every 5 s: its own snapshot (the same 3 commands) and a heartbeat pipeline of PEXPIRE for
  //   its key, each worker's key, the retired fold and the index (WORKERS + 3), with the same margin.
  // 2,000 requests with a per-request cost of even one command would exceed it many times over.
  const spacing = Math.min(FLUSH_S, QUIET_SPACING_MS / 1000);
  const workerWrites = WORKERS * (Math.floor(seconds / spacing) + 2);
  const primaryTicks = Math.floor(seconds / 5) + 2;
  const bound = workerWrites * 4 + primaryTicks * (3 + WORKERS + 3);
  const perRequest = commands / N;
  const perSecond = commands / seconds;
  console.log(
    `redis cost: ${commands} commands for ${N} requests in ${seconds.toFixed(2)} s (${Math.round(N / seconds)} req/s): ` +
      `${perRequest.toFixed(4)} commands/request, ${perSecond.toFixed(1)} commands/s; timer bound ${bound}; ${JSON.stringify(delta)}`,
  );
  assert.ok(commands <= bound, `${commands} commands > ${bound} expected from the flush timers: ${JSON.stringify(delta)}`);
  assert.ok(perRequest <= 0.05, `${perRequest} commands per request`);
  // Writes, TTL refreshes and one read per announced write: no listing, no KEYS/SCAN, no reconnect (AUTH, SELECT,
  // SETNAME).
  for (const cmd of ['mget', 'smembers', 'keys', 'scan', 'auth', 'select', 'hello', 'client|setname']) {
    assert.equal(delta[cmd], undefined, `unexpected ${cmd} under load: ${JSON.stringify(delta)}`);
  }
  assert.ok((delta.get ?? 0) <= (delta.set ?? 0) + WORKERS, `more reads than writes: ${JSON.stringify(delta)}`);

  // And the counts are still exact.
  assert.equal(sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total'), 50 + N);
});
