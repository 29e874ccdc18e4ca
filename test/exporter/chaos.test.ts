// Chaos: under continuous requests and scrapes, workers are SIGKILLed, recycled by max-requests, replaced by
// HUP and scaled by TTIN/TTOU. No counter or histogram series may ever decrease or vanish between two
// consecutive scrapes (law L1), and the number of series after 50 restarts equals that after 1 (law L2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, loadLoop, startServer } from '../helpers/server.js';
import { scrape, sum, type Scrape } from '../helpers/metrics.js';

const MONOTONIC = /(_total|_bucket|_count|_sum)(\{|$)/;

function monotonicSeries(s: Scrape): Map<string, number> {
  return new Map([...s.samples].filter(([k]) => MONOTONIC.test(k) && !k.startsWith('promfork_scrape_duration')));
}

test('counters never go back and series stay bounded through 50 restarts of every kind', { timeout: 180_000 }, async () => {
  const { server, url, metricsUrl } = await startServer([
    APP, '-w', '3', '--max-requests', '150', '--max-requests-jitter', '50', '--metrics-flush-interval', '0.2',
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
  // Compared as sets of keys (the state's entry timestamp aside): the same series, not just as many.
  const seriesCount = async () =>
    [...(await scrape(metricsUrl)).samples.keys()]
      .filter((k) => /^(gunicorn|promfork)_worker_/.test(k))
      .map((k) => k.replace(/timestamp="\d+"/, 'timestamp=""'))
      .sort();
  const workersAre = (n: number) => waitFor(async () => {
    const s = await scrape(metricsUrl);
    return server.workerPids().length === n && sum(s, 'gunicorn_worker_state', { state: 'running' }) === n;
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
  for (let i = 0; (await restarts()) < 50; i++) {
    const action = actions[i % actions.length]!;
    const pids = server.workerPids();
    if (action === 'kill' && pids.length > 0) process.kill(pids[i % pids.length]!, 'SIGKILL');
    if (action === 'hup') server.signal('SIGHUP');
    if (action === 'ttin') server.signal('SIGTTIN');
    if (action === 'ttou') server.signal('SIGTTOU');
    await waitFor(async () => server.workerPids().length >= 3);
    if (action === 'hup' || action === 'ttou') await workersAre(3);
  }
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
  const extra = seriesAfterMany.filter((k) => !seriesAfterOne.includes(k));
  const missing = seriesAfterOne.filter((k) => !seriesAfterMany.includes(k));
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] });
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
