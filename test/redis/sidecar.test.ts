// The sidecar exporter (`promfork exporter`) with a real redis-server: two servers on one Redis (pod-a, pod-b), the
// sidecar serves one instance, or every instance labelled server="NAME", with exact sums; its own health metrics are
// served and never written to Redis; a SIGKILLed worker never lowers its counters; and it serves a directory store.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, startServer, type Started } from '../helpers/server.js';
import { scrape, seriesOf, sum, type Scrape } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis.js';
import { until } from '../helpers/poll.js';
import { startSidecar, traffic } from '../helpers/sidecar.js';




/** Scrape the primary: its workers flush to the store before it answers, so the store then holds `expected`. */
async function flushed(s: Started, expected: number): Promise<void> {
  assert.equal(sum(await scrape(s.metricsUrl), 'gunicorn_worker_requests_total'), expected);
}

test('sidecar on Redis: one instance, or all labelled by server; health metrics not in Redis; a SIGKILL lowers nothing', async () => {
  const redis = await startRedis();
  const env = { REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) };
  const [a, b] = await Promise.all([
    startServer([APP, '-w', '2', '--metrics-instance', 'pod-a'], { env }),
    startServer([APP, '-w', '1', '--metrics-instance', 'pod-b'], { env }),
  ]);
  const A = { ok: 9, failing: 2 };
  const B = { ok: 4, failing: 1 };
  await Promise.all([traffic(a, A.ok, A.failing), traffic(b, B.ok, B.failing)]);
  const totalA = A.ok + A.failing;
  const totalB = B.ok + B.failing;
  await Promise.all([flushed(a, totalA), flushed(b, totalB)]);

  const redisArgs = ['--redis', '--redis-host', '127.0.0.1', '--redis-port', String(redis.port)];
  const [one, all] = await Promise.all([
    startSidecar([...redisArgs, '--metrics-instance', 'pod-a']),
    startSidecar([...redisArgs, '--all-instances']),
  ]);

  // One instance: pod-a's counts only, no server label.
  const sa = await scrape(one.metricsUrl);
  assert.equal(sum(sa, 'gunicorn_worker_requests_total'), totalA, sa.text);
  assert.equal(sum(sa, 'gunicorn_worker_failed_requests_total'), A.failing);
  assert.equal(sum(sa, 'gunicorn_worker_request_duration_seconds_count'), totalA);
  assert.deepEqual(seriesOf(sa, 'gunicorn_worker_requests_total').sort(), [
    'gunicorn_worker_requests_total{worker_id="worker_0"}',
    'gunicorn_worker_requests_total{worker_id="worker_1"}',
  ]);
  assert.doesNotMatch(sa.text, /^gunicorn_\S*server="/m);
  assert.equal(new Set(sa.types).size, sa.types.length, 'no family twice (docs/design.md, L6)');

  // All instances: each series labelled with its server, exact per-server sums.
  const sAll = await scrape(all.metricsUrl);
  assert.equal(sum(sAll, 'gunicorn_worker_requests_total', { server: 'pod-a' }), totalA, sAll.text);
  assert.equal(sum(sAll, 'gunicorn_worker_requests_total', { server: 'pod-b' }), totalB);
  assert.equal(sum(sAll, 'gunicorn_worker_requests_total'), totalA + totalB);
  assert.equal(sum(sAll, 'gunicorn_worker_failed_requests_total', { server: 'pod-a' }), A.failing);
  assert.equal(sum(sAll, 'gunicorn_worker_failed_requests_total', { server: 'pod-b' }), B.failing);
  assert.deepEqual(seriesOf(sAll, 'gunicorn_worker_requests_total').sort(), [
    'gunicorn_worker_requests_total{server="pod-a",worker_id="worker_0"}',
    'gunicorn_worker_requests_total{server="pod-a",worker_id="worker_1"}',
    'gunicorn_worker_requests_total{server="pod-b",worker_id="worker_0"}',
  ]);
  assert.equal(new Set(sAll.types).size, sAll.types.length, 'no family twice (docs/design.md, L6)');

  // The sidecar's own health metrics, served by both...
  for (const s of [sa, sAll]) {
    assert.equal(s.samples.get('promfork_exporter_store_up{store="redis"}'), 1, s.text);
    assert.ok(seriesOf(s, 'promfork_exporter_snapshot_age_seconds').length >= 1, s.text);
  }
  assert.equal(seriesOf(sa, 'promfork_exporter_snapshot_age_seconds').filter((k) => k.includes('server="pod-a"')).length, 2);
  assert.deepEqual(
    seriesOf(sAll, 'promfork_exporter_snapshot_age_seconds').map((k) => /server="([^"]+)"/.exec(k)?.[1]).sort(),
    ['pod-a', 'pod-a', 'pod-b'],
  );
  // ... and never written to Redis: every key belongs to one of the two servers' runs.
  const keys = JSON.parse(await redis.cli('KEYS', '*')) as string[];
  assert.ok(keys.length > 0);
  for (const k of keys) {
    assert.ok(!k.includes('exporter'), `sidecar key in Redis: ${k}`);
    assert.ok(k.startsWith(`gunicorn:{pod-a:${a.server.pid}}:`) || k.startsWith(`gunicorn:{pod-b:${b.server.pid}}:`), `foreign key ${k}`);
  }
  for (const v of JSON.parse(await redis.cli('MGET', ...keys.filter((k) => /:w:\d+$/.test(k)))) as string[]) {
    assert.doesNotMatch(v, /promfork_exporter_/);
  }

  // SIGKILL a worker of pod-a while scraping the sidecar continuously: pod-a's counters never go back, and once the
  // primary has folded the dead worker, the sum is still exact (counted once).
  const scrapes: Scrape[] = [];
  let scraping = true;
  const scraper = (async () => {
    while (scraping) scrapes.push(await scrape(one.metricsUrl));
  })();
  const [victim] = a.server.workerPids();
  const from = a.server.output.length;
  process.kill(victim!, 'SIGKILL');
  await a.server.waitFor(/Worker booted/, { from });
  const victimKey = `gunicorn:{pod-a:${a.server.pid}}:w:${victim}`;
  await until(`the dead worker's key ${victimKey} is folded away`, async () => ((await redis.cli('EXISTS', victimKey)) === '0' ? true : undefined));
  const seen = scrapes.length;
  await until('two more sidecar scrapes after the fold', async () => (scrapes.length >= seen + 2 ? true : undefined));
  scraping = false;
  await scraper;
  const violations: string[] = [];
  for (let i = 1; i < scrapes.length; i++) {
    for (const [key, before] of scrapes[i - 1]!.samples) {
      if (!/^gunicorn_worker_(requests_total|failed_requests_total|request_duration_seconds_(count|bucket))/.test(key)) continue;
      const after = scrapes[i]!.samples.get(key);
      if (after === undefined) violations.push(`scrape ${i}: ${key} vanished (was ${before})`);
      else if (after < before) violations.push(`scrape ${i}: ${key} went from ${before} to ${after}`);
    }
  }
  assert.deepEqual(violations, [], `${scrapes.length} scrapes`);
  const afterKill = scrapes[scrapes.length - 1]!;
  assert.equal(sum(afterKill, 'gunicorn_worker_requests_total'), totalA);
  assert.equal(sum(afterKill, 'gunicorn_worker_failed_requests_total'), A.failing);
  const retired = `gunicorn:{pod-a:${a.server.pid}}:retired`;
  assert.equal(await redis.cli('EXISTS', retired), '1', 'the fold is persisted in Redis');

  // The replacement counts on: the sidecar follows, exactly.
  await traffic(a, 3, 0);
  await flushed(a, totalA + 3);
  assert.equal(sum(await scrape(one.metricsUrl), 'gunicorn_worker_requests_total'), totalA + 3);
  const sAll2 = await scrape(all.metricsUrl);
  assert.equal(sum(sAll2, 'gunicorn_worker_requests_total', { server: 'pod-a' }), totalA + 3);
  assert.equal(sum(sAll2, 'gunicorn_worker_requests_total', { server: 'pod-b' }), totalB);
  for (const p of [one.proc, all.proc]) {
    await p.stop();
    assert.equal(p.proc.exitCode, 0, p.output);
  }
});

test('sidecar on a directory store: exact counts of a running directory-mode server', async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-sidecar-')), 'store');
  const server = await startServer([APP, '-w', '2', '--multiproc-dir', dir]);
  await traffic(server, 12, 3);
  await flushed(server, 15);
  const sidecar = await startSidecar(['--multiproc-dir', dir]);
  const s = await scrape(sidecar.metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 15, s.text);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), 3);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'Error', endpoint: '/throw' }), 3);
  assert.equal(seriesOf(s, 'gunicorn_worker_requests_total').length, 2);
  assert.equal(s.samples.get('promfork_exporter_store_up{store="directory"}'), 1, s.text);
  assert.equal(seriesOf(s, 'promfork_exporter_snapshot_age_seconds').length, 2);
  assert.equal(new Set(s.types).size, s.types.length, 'no family twice (docs/design.md, L6)');
  // It follows the server.
  await traffic(server, 4, 0);
  await flushed(server, 19);
  assert.equal(sum(await scrape(sidecar.metricsUrl), 'gunicorn_worker_requests_total'), 19);
  await sidecar.proc.stop();
  assert.equal(sidecar.proc.proc.exitCode, 0, sidecar.proc.output);
});

test('sidecar on a directory shared by two primaries: one server label per primary, never merged gauges', async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-sidecar-')), 'store');
  const a = await startServer([APP, '-w', '2', '--multiproc-dir', dir]);
  const b = await startServer([APP, '-w', '1', '--multiproc-dir', dir]);
  await Promise.all([traffic(a, 5, 1), traffic(b, 3, 0)]);
  await Promise.all([flushed(a, 6), flushed(b, 3)]);
  const sidecar = await startSidecar(['--multiproc-dir', dir, '--metrics-instance', 'vm']);
  const [serverA, serverB] = [`vm-${a.server.pid}`, `vm-${b.server.pid}`];
  // The primaries' own gauges (pids) reach the store with their snapshot, every 5 s.
  const s = await until('both primaries\' pid gauges are in the sidecar', async () => {
    const x = await scrape(sidecar.metricsUrl);
    return seriesOf(x, 'promfork_worker_pid').length === 3 ? x : undefined;
  });
  assert.equal(sum(s, 'gunicorn_worker_requests_total', { server: serverA }), 6, s.text);
  assert.equal(sum(s, 'gunicorn_worker_requests_total', { server: serverB }), 3);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { server: serverA }), 1);
  const pids = (server: string) =>
    seriesOf(s, 'promfork_worker_pid')
      .filter((k) => k.includes(`server="${server}"`))
      .map((k) => s.samples.get(k)!)
      .sort();
  assert.deepEqual(pids(serverA), [...a.server.workerPids()].sort());
  assert.deepEqual(pids(serverB), [...b.server.workerPids()]);
  await sidecar.proc.waitFor(/2 promfork primaries \(pids \d+,\d+\) share .*: served with server="vm-PID"/);
  await sidecar.proc.stop();
  assert.equal(sidecar.proc.proc.exitCode, 0, sidecar.proc.output);
});
