// Redis outages, with a real redis-server: promfork starts and serves while Redis is down and catches up, without a
// restart, once it is back; losing Redis under load fails no request, keeps scrapes fast, and no counter goes back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, loadLoop, request, startServer } from '../helpers/server.js';
import { MonotonicWatch, scrape, sum } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis.js';
import { until } from '../helpers/poll.js';

function redisEnv(port: number): NodeJS.ProcessEnv {
  return { REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port) };
}


test('Redis down at start: the server serves, store_up is 0 and the log says what to check; metrics resume when Redis comes up', async () => {
  const redis = await startRedis();
  const port = redis.port;
  await redis.stop(); // nothing listens on `port` now
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2'], { env: redisEnv(port) });

  // The app serves, and its requests are counted in memory.
  const plan = { ok: 11, thrown: 3 };
  for (let i = 0; i < plan.ok; i++) assert.equal((await request(`${url}/`)).status, 200);
  for (let i = 0; i < plan.thrown; i++) assert.equal((await request(`${url}/throw`)).status, 500);
  const total = plan.ok + plan.thrown;

  // One clear line with the address and the settings to check.
  const line = await server.waitFor(new RegExp(`^.*\\[(WARNING|ERROR)\\].*127\\.0\\.0\\.1:${port}.*$`, 'm'));
  assert.match(line[0], /REDIS_HOST/);
  assert.match(line[0], /REDIS_PORT/);

  const down = await scrape(metricsUrl);
  assert.ok(down.ms < 1000, `scrape took ${down.ms} ms`);
  assert.equal(down.samples.get('promfork_store_up{store="redis"}'), 0, down.text);
  // Nothing is exposed that was not persisted (docs/design.md, L1): no request count yet.
  assert.equal(sum(down, 'gunicorn_worker_requests_total'), 0);

  const from = server.output.length;
  await redis.restart(); // same port, without restarting promfork
  const up = await until('requests_total reaches the count made while Redis was down, with store_up 1', async () => {
    const s = await scrape(metricsUrl);
    const n = sum(s, 'gunicorn_worker_requests_total');
    assert.ok(n <= total, `counted ${n} > ${total} requests`);
    return n === total && s.samples.get('promfork_store_up{store="redis"}') === 1 ? s : undefined;
  });
  assert.equal(sum(up, 'gunicorn_worker_request_duration_seconds_count'), total);
  assert.equal(sum(up, 'gunicorn_worker_failed_requests_total'), plan.thrown);
  assert.equal(sum(up, 'gunicorn_worker_error_handling_total', { error_type: 'Error', endpoint: '/throw' }), plan.thrown);
  await server.waitFor(new RegExp(`Redis at 127\\.0\\.0\\.1:${port} is reachable again`), { from });

  // And it keeps counting exactly.
  for (let i = 0; i < 5; i++) assert.equal((await request(`${url}/`)).status, 200);
  assert.equal(sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total'), total + 5);
  assert.equal(server.proc.exitCode, null);
});

test('Redis lost under load and back: no failed request, fast scrapes, counters never go back, exact at the end', async () => {
  const redis = await startRedis();
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2'], { env: redisEnv(redis.port) });
  const watch = new MonotonicWatch();
  const WARMUP = 20;
  for (let i = 0; i < WARMUP; i++) assert.equal((await request(`${url}/`)).status, 200);
  assert.equal(sum(watch.see(await scrape(metricsUrl)), 'gunicorn_worker_requests_total'), WARMUP);

  const load = loadLoop(`${url}/`, { concurrency: 4, maxMs: 60_000 });
  try {
    await until('the load is running', async () => (load.sent >= 200 ? true : undefined));
    const before = watch.see(await scrape(metricsUrl));
    const beforeTotal = sum(before, 'gunicorn_worker_requests_total');
    assert.ok(beforeTotal > WARMUP, `before the outage: ${beforeTotal}`);

    const from = server.output.length;
    await redis.kill();
    const sentAtKill = load.sent;
    // During the outage scrapes answer fast, report the store down, and serve the last persisted values.
    const during = await until('store_up is 0', async () => {
      const s = watch.see(await scrape(metricsUrl));
      assert.ok(s.ms < 1000, `scrape during the outage took ${s.ms} ms`);
      return s.samples.get('promfork_store_up{store="redis"}') === 0 ? s : undefined;
    });
    assert.ok(sum(during, 'gunicorn_worker_requests_total') >= beforeTotal);
    await server.waitFor(new RegExp(`\\[WARNING\\].*Redis at 127\\.0\\.0\\.1:${redis.port} is unreachable`), { from });
    // Requests keep completing while Redis is down, none fails.
    await until('300 more requests completed during the outage', async () => (load.sent >= sentAtKill + 300 ? true : undefined));
    const late = watch.see(await scrape(metricsUrl));
    assert.ok(late.ms < 1000, `scrape during the outage took ${late.ms} ms`);
    assert.equal(late.samples.get('promfork_store_up{store="redis"}'), 0);
    assert.deepEqual(load.failures, []);
    const frozen = sum(late, 'gunicorn_worker_requests_total');

    await redis.restart(); // an empty Redis: no persistence
    await until('metrics resume (store_up 1 and the count moves again)', async () => {
      const s = watch.see(await scrape(metricsUrl));
      return s.samples.get('promfork_store_up{store="redis"}') === 1 && sum(s, 'gunicorn_worker_requests_total') > frozen ? true : undefined;
    });
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, []);
  const answered = [...load.statuses.values()].reduce((a, b) => a + b, 0);
  assert.equal(answered, load.sent, 'every request sent was answered');
  // Load stopped: a scrape makes every worker flush (Redis is up), so the count is exact: every request the server
  // answered, those of the outage included (counted in memory, persisted once Redis was back), none twice.
  const expected = WARMUP + answered;
  const final = await until(`requests_total equals the ${expected} requests answered`, async () => {
    const s = watch.see(await scrape(metricsUrl));
    const n = sum(s, 'gunicorn_worker_requests_total');
    assert.ok(n <= expected, `counted ${n} > ${expected} answered`);
    return n === expected ? s : undefined;
  }, 10_000);
  assert.equal(sum(final, 'gunicorn_worker_request_duration_seconds_count'), expected);
  assert.equal(final.samples.get('promfork_store_up{store="redis"}'), 1);
  assert.deepEqual(watch.violations, []);
  assert.ok(watch.requestTotals.length >= 4);
  for (let i = 1; i < watch.requestTotals.length; i++) {
    assert.ok(watch.requestTotals[i]! >= watch.requestTotals[i - 1]!, `requests_total went back: ${watch.requestTotals.join(' ')}`);
  }
  assert.equal(final.samples.get('promfork_held_decreases_total'), 0, 'the collector never had to hold a decrease');
  assert.equal(server.workerPids().length, 2, 'no worker died');
});
