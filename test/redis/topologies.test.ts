// promfork and its sidecar on a real Redis Cluster (3 masters, with replicas) and a real Redis Sentinel set-up (a
// master, a replica, 3 sentinels), passwords on, started on loopback by the harness: exact counts on the primary and
// the sidecar, a run's keys on one master; and failovers under load (SENTINEL FAILOVER, then the new master killed;
// a cluster master killed so its replica takes over): no app request fails, no counter ever goes back on the primary
// or the sidecar (promfork_held_decreases_total stays 0), and the counts are exact once the load stops. Both
// topologies over TLS only (rediss+cluster://, rediss+sentinel://, the CA given by NODE_EXTRA_CA_CERTS).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, loadLoop, startServer, type Started } from '../helpers/server.js';
import { MonotonicWatch, scrape, seriesOf, sum, type Scrape } from '../helpers/metrics.js';
import { keySlot, startCluster, startSentinel, type RedisServer } from '../helpers/redis.js';
import { makePki } from '../helpers/pki.js';
import { needTool } from '../helpers/tools.js';
import { until } from '../helpers/poll.js';
import { startSidecar, traffic } from '../helpers/sidecar.js';

const PASSWORD = 'tp-Pa55/w0rd@z';
const SENTINEL_PASSWORD = 'tp-S3ntinel#q';

/** Scrape the primary: its workers flush to the store before it answers, so the store then holds `expected`. */
async function flushed(s: Started, expected: number): Promise<void> {
  assert.equal(sum(await scrape(s.metricsUrl), 'gunicorn_worker_requests_total'), expected);
}

function assertNoSecret(where: string, text: string): void {
  for (const s of [PASSWORD, encodeURIComponent(PASSWORD), SENTINEL_PASSWORD, encodeURIComponent(SENTINEL_PASSWORD)]) {
    assert.ok(!text.includes(s), `${where} shows a password`);
  }
}

/** Every key of every node whose role is master (KEYS: a test's small data set). */
async function clusterKeys(masters: RedisServer[]): Promise<Map<RedisServer, string[]>> {
  return new Map(await Promise.all(masters.map(async (m) => [m, (JSON.parse(await m.cli('KEYS', '*')) as string[]).sort()] as const)));
}

test('Redis Cluster: exact counts on the primary and the sidecar; each run on one master; a graceful stop removes the run', async () => {
  const cluster = await startCluster({ masters: 3, password: PASSWORD });
  const env = { REDIS_ENABLED: 'true', REDIS_URL: cluster.url, REDIS_PASSWORD: PASSWORD };
  const [a, b] = await Promise.all([
    startServer([APP, '-w', '2', '--metrics-instance', 'pod-a'], { env }),
    startServer([APP, '-w', '1', '--metrics-instance', 'pod-b'], { env }),
  ]);
  const A = { ok: 13, failing: 3 };
  const B = { ok: 6, failing: 1 };
  await Promise.all([traffic(a, A.ok, A.failing), traffic(b, B.ok, B.failing)]);
  const totalA = A.ok + A.failing;
  const totalB = B.ok + B.failing;
  await Promise.all([flushed(a, totalA), flushed(b, totalB)]);
  const sa = await scrape(a.metricsUrl);
  assert.equal(sa.samples.get('promfork_store_up{store="redis"}'), 1, sa.text);
  assert.equal(sum(sa, 'gunicorn_worker_failed_requests_total'), A.failing);

  // Each run's keys: one slot (the hash tag), all on the master that owns it, nothing of it anywhere else.
  const masters = await cluster.masters();
  const byNode = await clusterKeys(masters);
  for (const s of [a, b]) {
    const base = `gunicorn:{${s === a ? 'pod-a' : 'pod-b'}:${s.server.pid}}:`;
    const owner = await cluster.masterOf(`${base}workers`);
    const mine = [...byNode].flatMap(([node, keys]) => keys.filter((k) => k.startsWith(base)).map((k) => ({ node, k })));
    assert.ok(mine.length >= (s === a ? 3 : 2), JSON.stringify(mine.map((x) => x.k)));
    for (const { node, k } of mine) {
      assert.equal(node, owner, `${k} is not on the run's master`);
      assert.equal(keySlot(k), keySlot(`${base}workers`));
    }
    for (const pid of s.server.workerPids()) assert.ok(mine.some((x) => x.k === `${base}w:${pid}`), `no key of worker ${pid}`);
  }

  // The sidecar, through REDIS_CLUSTER and one seed node in REDIS_HOST: one instance, or all with a server label.
  const seed = masters[2]!;
  const sidecarArgs = ['--redis', '--redis-cluster', '--redis-host', `127.0.0.1:${seed.port}`];
  const sidecarEnv = { REDIS_PASSWORD: PASSWORD };
  const [one, all] = await Promise.all([
    startSidecar([...sidecarArgs, '--metrics-instance', 'pod-a'], sidecarEnv),
    startSidecar([...sidecarArgs, '--all-instances'], sidecarEnv),
  ]);
  const s1 = await scrape(one.metricsUrl);
  assert.equal(s1.samples.get('promfork_exporter_store_up{store="redis"}'), 1, s1.text);
  assert.equal(sum(s1, 'gunicorn_worker_requests_total'), totalA, s1.text);
  assert.equal(sum(s1, 'gunicorn_worker_failed_requests_total'), A.failing);
  assert.deepEqual(seriesOf(s1, 'gunicorn_worker_requests_total').sort(), [
    'gunicorn_worker_requests_total{worker_id="worker_0"}',
    'gunicorn_worker_requests_total{worker_id="worker_1"}',
  ]);
  const s2 = await scrape(all.metricsUrl);
  assert.equal(sum(s2, 'gunicorn_worker_requests_total', { server: 'pod-a' }), totalA, s2.text);
  assert.equal(sum(s2, 'gunicorn_worker_requests_total', { server: 'pod-b' }), totalB);
  assert.equal(sum(s2, 'gunicorn_worker_failed_requests_total', { server: 'pod-b' }), B.failing);

  // A graceful stop removes the run's keys (found on its master by SCAN); the other run stays.
  await a.server.stop();
  assert.equal(a.server.proc.exitCode, 0, a.server.output);
  const left = [...(await clusterKeys(masters)).values()].flat();
  assert.deepEqual(left.filter((k) => k.includes(`{pod-a:`)), []);
  assert.ok(left.some((k) => k.startsWith(`gunicorn:{pod-b:${b.server.pid}}:`)));
  for (const out of [a.server.output, b.server.output, one.proc.output, all.proc.output]) assertNoSecret('the output', out);
});

/**
 * Load on `server` while `disrupt` runs, scraping the primary (and the sidecar, when given) all along. Asserts no
 * failed request, no counter going back, no held decrease, and exact counts once the load stops.
 */
async function underLoad(s: Started, sidecar: { metricsUrl: string; proc: { output: string } } | null, disrupt: () => Promise<void>): Promise<{ storeDownScrapes: number; during: number }> {
  const primary = new MonotonicWatch();
  const side = new MonotonicWatch();
  const WARMUP = 20;
  await traffic(s, WARMUP, 0);
  await flushed(s, WARMUP);
  const sidecarUrl = sidecar?.metricsUrl ?? null;
  let storeDownScrapes = 0;
  let scraping = true;
  let disrupting = false;
  const during: Scrape[] = [];
  // Two scrapers, so a slow sidecar scrape (its store deadline) never spaces out the primary's.
  const scrapers = [
    (async () => {
      while (scraping) {
        const startedDuring = disrupting;
        const p = primary.see(await scrape(s.metricsUrl));
        // Within Prometheus' default scrape timeout, on a machine shared with other jobs (the primary's own deadline
        // for the store is --scrape-timeout, 0.25 s: the rest is scheduling).
        assert.ok(p.ms < 10_000, `a scrape of the primary took ${p.ms} ms`);
        if (startedDuring || disrupting) during.push(p);
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
    (async () => {
      while (scraping && sidecarUrl !== null) {
        const q = await scrape(sidecarUrl);
        // While the sidecar cannot read the store it serves only its own health metrics (no value, so none lower).
        if (q.samples.get('promfork_exporter_store_up{store="redis"}') === 1) side.see(q);
        else storeDownScrapes++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })(),
  ];
  const load = loadLoop(`${s.url}/`, { concurrency: 4, maxMs: 120_000 });
  try {
    await until('the load is running', async () => (load.sent >= 200 ? true : undefined));
    disrupting = true;
    await disrupt();
    disrupting = false;
    const sentAfter = load.sent;
    // The store is back: the count moves on past what was sent when the disruption ended.
    await until('the primary counts requests made after the failover', async () => {
      const n = sum(await scrape(s.metricsUrl), 'gunicorn_worker_requests_total');
      return n > WARMUP + sentAfter ? true : undefined;
    }, 30_000);
  } finally {
    await load.stop();
    scraping = false;
    await Promise.all(scrapers);
  }
  assert.deepEqual(load.failures, [], 'no app request failed');
  const answered = [...load.statuses.values()].reduce((x, y) => x + y, 0);
  assert.equal(answered, load.sent, 'every request sent was answered');
  const expected = WARMUP + answered;
  const final = await until(`requests_total equals the ${expected} requests answered`, async () => {
    const f = primary.see(await scrape(s.metricsUrl));
    const n = sum(f, 'gunicorn_worker_requests_total');
    assert.ok(n <= expected, `counted ${n} > ${expected} answered`);
    return n === expected ? f : undefined;
  }, 15_000);
  assert.equal(sum(final, 'gunicorn_worker_request_duration_seconds_count'), expected);
  assert.equal(final.samples.get('promfork_store_up{store="redis"}'), 1);
  assert.equal(final.samples.get('promfork_held_decreases_total'), 0, 'the primary never had to hold a decrease');
  assert.deepEqual(primary.violations, [], 'a counter of the primary went back');
  assert.ok(during.length >= 1, 'no scrape of the primary during the failover');
  if (sidecarUrl !== null) {
    let lastSidecar = '';
    const q = await until(
      `the sidecar serves the exact count ${expected}`,
      async () => {
        const x = side.see(await scrape(sidecarUrl));
        lastSidecar = x.text;
        return sum(x, 'gunicorn_worker_requests_total') === expected ? x : undefined;
      },
      15_000,
      () =>
        lastSidecar.split('\n').filter((l) => /^(gunicorn_worker_requests_total|promfork_exporter_store)/.test(l)).join('\n') +
        `\nthe sidecar's log:\n${sidecar!.proc.output.slice(-3000)}`,
    );
    assert.equal(sum(q, 'gunicorn_worker_request_duration_seconds_count'), expected);
    assert.deepEqual(side.violations, [], 'a counter of the sidecar went back');
  }
  assert.equal(s.server.workerPids().length, 2, 'no worker died');
  return { storeDownScrapes, during: during.length };
}

test('Redis Sentinel: SENTINEL FAILOVER, then the new master killed, under load: no failed request, counters never go back, exact after', async () => {
  const setup = await startSentinel({ replicas: 1, sentinels: 3, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
  const env = { REDIS_ENABLED: 'true', REDIS_URL: setup.url, REDIS_PASSWORD: PASSWORD, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD };
  const s = await startServer([APP, '-w', '2', '--metrics-instance', 'pod-s'], { env });
  const side = await startSidecar(['--redis', '--metrics-instance', 'pod-s'], env);
  const first = await setup.currentMaster();
  await underLoad(s, side, async () => {
    const second = await setup.failover();
    assert.notEqual(second, first);
    // A hard failure now: the new master is killed; the sentinels promote the first one back.
    await second.kill();
    await until('the sentinels promote the old master again', async () => ((await setup.currentMaster()) === first ? true : undefined), 30_000);
    await setup.waitMaster(first);
  });
  for (const out of [s.server.output, side.proc.output]) assertNoSecret('the output', out);
});

test('Redis Cluster: the master of the run killed under load, its replica takes over: no failed request, counters never go back, exact after; the old master rejoins as a replica', async () => {
  const cluster = await startCluster({ masters: 3, replicas: 1, password: PASSWORD });
  const env = { REDIS_ENABLED: 'true', REDIS_URL: cluster.url, REDIS_PASSWORD: PASSWORD };
  const s = await startServer([APP, '-w', '2', '--metrics-instance', 'pod-c'], { env });
  const side = await startSidecar(['--redis', '--metrics-instance', 'pod-c'], env);
  const indexKey = `gunicorn:{pod-c:${s.server.pid}}:workers`;
  const victim = await cluster.masterOf(indexKey);
  await underLoad(s, side, async () => {
    await victim.kill();
    await until('a replica serves the run’s slot', async () => {
      const m = await cluster.masterOf(indexKey).catch(() => victim);
      return m !== victim ? m : undefined;
    }, 30_000);
    await cluster.waitHealthy();
  });
  const owner = await cluster.masterOf(indexKey);
  assert.notEqual(owner, victim);
  assert.equal(await owner.cli('EXISTS', indexKey), '1');

  // The old master restarted: it rejoins as a replica of the new one (its node file kept), and counting goes on exactly.
  const before = sum(await scrape(s.metricsUrl), 'gunicorn_worker_requests_total');
  await victim.restart();
  await cluster.waitHealthy();
  await until('the restarted node is a replica', async () => ((JSON.parse(await victim.cli('ROLE')) as string[])[0] === 'slave' ? true : undefined));
  assert.equal(await cluster.masterOf(indexKey), owner);
  await traffic(s, 7, 1);
  await flushed(s, before + 8);
  const q = await until('the sidecar serves the count after the restart', async () => {
    const x = await scrape(side.metricsUrl);
    return sum(x, 'gunicorn_worker_requests_total') === before + 8 ? x : undefined;
  });
  assert.equal(sum(q, 'gunicorn_worker_failed_requests_total'), 1);
  assert.equal(sum(await scrape(s.metricsUrl), 'promfork_held_decreases_total'), 0);
});

test('TLS: rediss+cluster:// and rediss+sentinel:// (TLS-only nodes and sentinels, passwords): exact counts on the primary and the sidecar', async (t) => {
  if (needTool(t, 'openssl') === undefined) return; // opted out (PROMFORK_TEST_SKIP=openssl): skipped, named
  const pki = makePki('promfork-redis-tls-');
  t.after(() => pki.remove());
  const tls = { cert: pki.file('server.crt'), key: pki.file('server.key'), ca: pki.file('ca.crt') };
  const [cluster, setup] = await Promise.all([
    startCluster({ masters: 3, password: PASSWORD, tls }),
    startSentinel({ replicas: 1, sentinels: 3, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, tls }),
  ]);
  assert.match(cluster.url, /^rediss\+cluster:\/\//);
  assert.match(setup.url, /^rediss\+sentinel:\/\//);
  // Node's CA list plus the test CA, for the primary, its workers and the sidecar.
  const trust = { NODE_EXTRA_CA_CERTS: pki.file('ca.crt') };
  for (const [label, env] of [
    ['cluster', { REDIS_ENABLED: 'true', REDIS_URL: cluster.url, REDIS_PASSWORD: PASSWORD, ...trust }],
    ['sentinel', { REDIS_ENABLED: 'true', REDIS_URL: setup.url, REDIS_PASSWORD: PASSWORD, REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD, ...trust }],
  ] as const) {
    const s = await startServer([APP, '-w', '2', '--metrics-instance', `tls-${label}`], { env });
    await traffic(s, 9, 2);
    await flushed(s, 11);
    const p = await scrape(s.metricsUrl);
    assert.equal(p.samples.get('promfork_store_up{store="redis"}'), 1, `${label}: ${p.text}`);
    assert.equal(sum(p, 'gunicorn_worker_failed_requests_total'), 2);
    const side = await startSidecar(['--redis', '--metrics-instance', `tls-${label}`], env);
    const q = await scrape(side.metricsUrl);
    assert.equal(q.samples.get('promfork_exporter_store_up{store="redis"}'), 1, `${label} sidecar: ${q.text}\n${side.proc.output}`);
    assert.equal(sum(q, 'gunicorn_worker_requests_total'), 11);
    for (const out of [s.server.output, side.proc.output]) assertNoSecret(`the ${label} output`, out);
  }
  // The data really went over TLS-only ports: the nodes have no plain port at all.
  const [master] = await cluster.masters();
  assert.deepEqual(JSON.parse(await master!.cli('CONFIG', 'GET', 'port')), ['port', '0']);
  assert.deepEqual(JSON.parse(await master!.cli('CONFIG', 'GET', 'tls-port')), ['tls-port', String(master!.port)]);
});
