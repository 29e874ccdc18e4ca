// Chaos: under continuous requests and scrapes, workers are SIGKILLed, recycled by max-requests, replaced by
// HUP and scaled by TTIN/TTOU. No counter or histogram series may ever decrease or vanish between two
// consecutive scrapes (docs/design.md, L1), and the number of series after 50 restarts equals that after 1 (docs/design.md, L2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, loadLoop, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum, type Scrape } from '../helpers/metrics.js';

const MONOTONIC = /(_total|_bucket|_count|_sum)(\{|$)/;

function monotonicSeries(s: Scrape): Map<string, number> {
  return new Map([...s.samples].filter(([k]) => MONOTONIC.test(k) && !k.startsWith('promfork_scrape_duration')));
}

test('counters never go back and series stay bounded through 50 restarts of every kind', { timeout: 180_000 }, async () => {
  const { server, url, metricsUrl } = await startServer([
    APP, '-w', '3', '--max-requests', '400', '--max-requests-jitter', '100', '--metrics-flush-interval', '0.2',
    '--log-level', 'info',
  ], { waitWorkers: 0 });
  await waitFor(async () => sum(await scrape(metricsUrl), 'gunicorn_worker_state', { state: 'running' }) === 3);

  const ok = loadLoop(`${url}/`, { concurrency: 3, maxMs: 150_000 });
  const failing = loadLoop(`${url}/throw`, { concurrency: 1, maxMs: 150_000 });

  // Scrape continuously and check every scrape against the previous one.
  let previous: Map<string, number> | null = null;
  let scrapes = 0;
  const violations: string[] = [];
  let last: Scrape | null = null;
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      const s = await scrape(metricsUrl);
      const now = monotonicSeries(s);
      if (previous) {
        for (const [key, before] of previous) {
          const after = now.get(key);
          if (after === undefined) violations.push(`${key} vanished (was ${before})`);
          else if (after < before) violations.push(`${key} went from ${before} to ${after}`);
        }
      }
      previous = now;
      last = s;
      scrapes++;
    }
  })();

  const restarts = async () => sum(await scrape(metricsUrl), 'gunicorn_master_worker_restarts_total');
  // Per-worker series (the master's signal and restart-reason series are bounded by their label sets).
  // Compared as sets of keys (the state's entry timestamp aside): the same series, not just as many. Taken from
  // a scrape where exactly the 3 seats run (max-requests keeps recycling workers under the load meanwhile).
  const seriesCount = async () => {
    let keys: string[] = [];
    await waitFor(async () => {
      const s = await scrape(metricsUrl);
      const states = seriesOf(s, 'gunicorn_worker_state');
      if (states.length !== 3 || sum(s, 'gunicorn_worker_state', { state: 'running' }) !== 3) return false;
      if (seriesOf(s, 'promfork_worker_snapshot_age_seconds').length !== 3) return false;
      keys = [...s.samples.keys()]
        .filter((k) => /^(gunicorn|promfork)_worker_/.test(k))
        .map((k) => k.replace(/timestamp="\d+"/, 'timestamp=""'))
        .sort();
      return true;
    });
    return keys;
  };

  // n seats, each with a running worker (a recycled worker may still be finishing beside its successor).
  const workersAre = (n: number) => waitFor(async () => {
    const s = await scrape(metricsUrl);
    return seriesOf(s, 'gunicorn_worker_state').length === n && sum(s, 'gunicorn_worker_state', { state: 'running' }) === n;
  });

  // Seat 3 exists once (TTIN) before the first measurement, so both measurements see the same seats.
  server.signal('SIGTTIN');
  await workersAre(4);
  server.signal('SIGTTOU');
  await workersAre(3);
  process.kill(server.workerPids()[0]!, 'SIGKILL');
  await waitFor(async () => (await restarts()) >= 1);
  await workersAre(3);
  const seriesAfterOne = await seriesCount();

  const actions = ['kill', 'hup', 'ttin', 'kill', 'ttou', 'kill'] as const;
  let target = 3;
  for (let i = 0; (await restarts()) < 50; i++) {
    const action = actions[i % actions.length]!;
    const pids = server.workerPids();
    if (action === 'kill' && pids.length > 0) process.kill(pids[i % pids.length]!, 'SIGKILL');
    if (action === 'hup') server.signal('SIGHUP');
    if (action === 'ttin') {
      server.signal('SIGTTIN');
      target++;
    }
    if (action === 'ttou') {
      server.signal('SIGTTOU');
      target--;
    }
    await workersAre(target);
  }
  for (; target > 3; target--) server.signal('SIGTTOU');
  await workersAre(3);
  const total = await restarts();
  assert.ok(total >= 50, `restarts: ${total}`);
  // Gauges of the replaced workers are gone; the counters of every seat remain: the same series as after 1.
  const seriesAfterMany = await seriesCount();

  scraping = false;
  await scraper;
  await ok.stop();
  await failing.stop();
  assert.deepEqual(violations, []);
  // The collector's guard against float rounding never had to hold a real drop.
  assert.equal(sum(last!, 'promfork_held_decreases_total'), 0);
  assert.doesNotMatch(server.output, /fell from/);
  assert.ok(scrapes > 20, `scrapes: ${scrapes}`);
  // Counter and histogram series: exactly the same set (every seat that ever existed, 0..3). Gauges: one set
  // per live seat, 3 seats both times (which seats run may differ: TTOU stops the oldest worker).
  const monotonic = (keys: string[]) => keys.filter((k) => MONOTONIC.test(k));
  const extra = monotonic(seriesAfterMany).filter((k) => !seriesAfterOne.includes(k));
  const missing = monotonic(seriesAfterOne).filter((k) => !seriesAfterMany.includes(k));
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] });
  assert.equal(seriesAfterMany.length, seriesAfterOne.length);
  // The pid gauge follows the replacements on the same seats: one series per seat, never one per pid.
  assert.equal(seriesAfterMany.filter((k) => k.startsWith('promfork_worker_pid{')).length, 3);
  const reasons = last!;
  for (const reason of ['killed', 'reload', 'max-requests']) {
    assert.ok(sum(reasons, 'gunicorn_master_worker_restart_reasons_total', { reason }) > 0, `restarts by ${reason}`);
  }
  // Requests kept flowing.
  assert.ok(ok.sent > 500, `requests: ${ok.sent}`);
  assert.ok(sum(reasons, 'gunicorn_worker_requests_total') > 0);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
