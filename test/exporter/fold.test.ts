// The fold, proven: when workers exit (HUP, a worker's TERM or QUIT, a timeout abort, max-requests), their counts
// move into the retired totals, and /metrics shows exact totals of everything the workers counted: requests,
// request durations, failures and the app's own counter. Traffic is also sent after the last scrape before the
// event, so that a dropped fold cannot hide behind the collector's hold of counters at their last exposed value
// (a hold is a bug: promfork_held_decreases_total stays 0). The scrape is taken once the dead workers' snapshots
// left the store (the fold is persisted before that), so that no scrape saw their final values before the fold.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer, type Started } from '../helpers/server.js';
import { scrape, sum, type Scrape } from '../helpers/metrics.js';
import { until } from '../helpers/poll.js';

const APP = path.join(FIXTURES, 'apps', 'fold-app.js');

/** What the workers must have counted. */
class Expected {
  requests = 0;
  failed = 0;
  appCalls = 0;
  readonly pids = new Set<number>();

  /** `n` requests: every fourth a 500 status, every sixth (from the second) a thrown error, else 200. */
  async send(url: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const route = i % 4 === 0 ? '/fail' : i % 6 === 1 ? '/throw' : '/';
      const r = await request(`${url}${route}`);
      assert.equal(r.status, route === '/' ? 200 : 500);
      if (route !== '/throw') this.pids.add(Number(r.body));
      this.requests++;
      this.appCalls++;
      if (route !== '/') this.failed++;
    }
  }
}

function assertExact(s: Scrape, e: Expected, when: string): void {
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), e.requests, `${when}: requests`);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_count'), e.requests, `${when}: duration count`);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_bucket', { le: '+Inf' }), e.requests, `${when}: +Inf bucket`);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), e.failed, `${when}: failed`);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total'), e.failed, `${when}: errors by type`);
  assert.equal(sum(s, 'app_calls_total'), e.appCalls, `${when}: the app's counter`);
  assert.equal(sum(s, 'promfork_held_decreases_total'), 0, `${when}: no counter had to be held`);
}

/** Worker snapshot files of this run in the store directory (the primary's own snapshot excluded). */
function snapshotPids(started: Started): number[] {
  const dir = path.join(started.multiprocDir, 'store');
  const ppid = started.server.pid;
  return readdirSync(dir)
    .map((n) => new RegExp(`^promfork-${ppid}-(\\d+)\\.json$`).exec(n)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number)
    .filter((p) => p !== ppid);
}

/** Wait until the store holds the snapshots of the live workers only: every dead worker is folded. */
async function foldedAll(started: Started): Promise<void> {
  await until(
    'only live workers have snapshots in the store',
    () => {
      const live = started.server.workerPids();
      const files = snapshotPids(started);
      return live.length > 0 && files.every((p) => live.includes(p)) ? true : undefined;
    },
    20_000,
    () => `live ${started.server.workerPids()}, files ${snapshotPids(started)}`,
  );
}

/** Phase 1, a scrape, phase 2 (never scraped), the event, then an exact scrape; then more traffic, exact again. */
async function proveFold(
  args: string[],
  event: (started: Started, e: Expected) => Promise<void>,
  adjust: (e: Expected) => void = () => {},
): Promise<void> {
  const started = await startServer([APP, ...args]);
  const { url, metricsUrl } = started;
  const e = new Expected();
  const initial = new Set(started.server.workerPids());
  await e.send(url, 24);
  assertExact(await scrape(metricsUrl), e, 'before the event');
  await e.send(url, 24);
  await event(started, e);
  adjust(e);
  await foldedAll(started);
  const after = started.server.workerPids();
  assert.ok(after.some((p) => !initial.has(p)), `a worker was replaced (first ${[...initial]}, now ${after})`);
  assertExact(await scrape(metricsUrl), e, 'after the event');
  await e.send(url, 12);
  assertExact(await scrape(metricsUrl), e, 'after more traffic');
}

test('HUP: every worker replaced, exact totals', async () => {
  await proveFold(['-w', '2'], async ({ server }) => {
    const from = server.output.length;
    server.signal('SIGHUP');
    await server.waitForCount(/Worker booted/, 2, { from });
    await server.waitForCount(/Worker exiting \(pid: \d+\)/, 2, { from });
  });
});

for (const sig of ['SIGTERM', 'SIGQUIT'] as const) {
  test(`a worker's ${sig}: replaced, exact totals`, async () => {
    await proveFold(['-w', '2'], async ({ server }, e) => {
      const victim = [...e.pids].find((p) => server.workerPids().includes(p))!;
      assert.ok(victim, 'a worker that served traffic');
      const from = server.output.length;
      process.kill(victim, sig);
      await server.waitFor(new RegExp(`Worker exiting \\(pid: ${victim}\\)`), { from });
      await server.waitFor(/Worker booted/, { from });
    });
  });
}

test('timeout abort: a sync worker stuck on a request past --timeout is aborted, exact totals', async () => {
  let slowPid = 0;
  await proveFold(
    ['-w', '2', '-k', 'sync', '--timeout', '2'],
    async ({ server, url }) => {
      const from = server.output.length;
      // Never answered: the worker is aborted first. The app counted it; the worker did not finish it.
      const slow = request(`${url}/slow?ms=30000`).catch((err: Error) => err);
      const m = await server.waitFor(/WORKER TIMEOUT \(pid:(\d+)\)/, { from });
      slowPid = Number(m[1]);
      await server.waitFor(new RegExp(`Worker exiting \\(pid: ${slowPid}\\)`), { from });
      await server.waitFor(/Worker booted/, { from });
      assert.ok((await slow) instanceof Error, 'the stuck request was cut');
    },
    (e) => {
      e.appCalls++;
    },
  );
  assert.ok(slowPid > 0);
});

test('max-requests: workers recycle during the traffic, exact totals', async () => {
  await proveFold(['-w', '2', '--max-requests', '10'], async ({ server }) => {
    // 48 requests over 2 workers recycled every 10: several generations exited already; wait for the last one.
    await until('a worker recycled', () => (/Autorestarting worker/.test(server.output) ? true : undefined));
  });
});
