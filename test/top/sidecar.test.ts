// `promfork top --once` against the real sidecar: two promfork servers on one real redis-server (pod-a with two
// workers, pod-b with one), `promfork exporter --redis --all-instances` serving both (every series labelled
// server="NAME"). Each server's block shows its own worker pids and exact request and failure counts (worker_0
// of each server on its own row, never summed); --server filters, an unknown name is one error listing the
// servers; the sidecar serving one instance (no label) gives the frame of a primary. All on 127.0.0.1, every
// process stopped by pid; no sleeps: the sidecar is polled with a deadline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum, type Scrape } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis.js';
import { cells, runTop } from './helpers.js';
import { until } from '../helpers/poll.js';
import { startSidecar, traffic } from '../helpers/sidecar.js';

const HEADER = ['WORKER', 'PID', 'STATE', 'REQUESTS', 'REQ/S', 'P50', 'P99', 'FAILED', 'FAIL/S', 'MEM', 'CPU', 'UPTIME'];
const ESC = /\x1b/; // eslint-disable-line no-control-regex

function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}




/** A server's own seats, read from its primary's /metrics: worker_id -> pid, requests, failures. */
interface Seat {
  pid: number;
  requests: number;
  failures: number;
}
function seatsOf(s: Scrape, server?: string): Map<string, Seat> {
  const seats = new Map<string, Seat>();
  const label: Record<string, string> = server === undefined ? {} : { server };
  for (const key of s.samples.keys()) {
    const m = /^promfork_worker_pid\{(.*)\}$/.exec(key);
    if (!m) continue;
    const id = /worker_id="([^"]+)"/.exec(m[1]!)![1]!;
    if (server !== undefined && !m[1]!.includes(`server="${server}"`)) continue;
    seats.set(id, {
      pid: s.samples.get(key)!,
      requests: sum(s, 'gunicorn_worker_requests_total', { ...label, worker_id: id }),
      failures: sum(s, 'gunicorn_worker_failed_requests_total', { ...label, worker_id: id }),
    });
  }
  return new Map([...seats].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The cells of one block's rows: its header line, the column titles, one row per seat, the total. */
function block(lines: string[], at: number, seats: number): { title: string; rows: string[][]; total: string[] } {
  assert.deepEqual(cells(lines[at + 1]!), HEADER, lines.join('\n'));
  return { title: lines[at]!, rows: lines.slice(at + 2, at + 2 + seats).map(cells), total: cells(lines[at + 2 + seats]!) };
}

test('top --once on promfork exporter --all-instances: a block per server with its own pids and exact counts; --server', async () => {
  const redis = await startRedis();
  const env = { REDIS_ENABLED: 'true', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port) };
  const [a, b] = await Promise.all([
    startServer([APP, '-w', '2', '--metrics-instance', 'pod-a'], { env }),
    startServer([APP, '-w', '1', '--metrics-instance', 'pod-b'], { env }),
  ]);
  const plan = { a: { ok: 9, failing: 2 }, b: { ok: 4, failing: 3 } };
  await Promise.all([traffic(a, plan.a.ok, plan.a.failing), traffic(b, plan.b.ok, plan.b.failing)]);
  // Scraping a primary makes its workers flush to the store first: Redis then holds these exact counts.
  const [ownA, ownB] = await Promise.all([scrape(a.metricsUrl), scrape(b.metricsUrl)]);
  const seatsA = seatsOf(ownA);
  const seatsB = seatsOf(ownB);
  assert.deepEqual([...seatsA.values()].map((s) => s.pid).sort((x, y) => x - y), a.server.workerPids());
  assert.deepEqual([...seatsB.values()].map((s) => s.pid), b.server.workerPids());
  assert.deepEqual([...seatsA.keys(), ...seatsB.keys()], ['worker_0', 'worker_1', 'worker_0']);
  const totalOf = (seats: Map<string, Seat>, k: 'requests' | 'failures') => [...seats.values()].reduce((n, s) => n + s[k], 0);
  assert.deepEqual([totalOf(seatsA, 'requests'), totalOf(seatsA, 'failures')], [plan.a.ok + plan.a.failing, plan.a.failing]);
  assert.deepEqual([totalOf(seatsB, 'requests'), totalOf(seatsB, 'failures')], [plan.b.ok + plan.b.failing, plan.b.failing]);

  const redisArgs = ['--redis', '--redis-host', '127.0.0.1', '--redis-port', String(redis.port)];
  const [all, one] = await Promise.all([startSidecar([...redisArgs, '--all-instances']), startSidecar([...redisArgs, '--metrics-instance', 'pod-a'])]);

  // The primaries' own metrics (pids, states, master counters) reach the store with their snapshot, every 5 s:
  // wait until the sidecar serves each server's seats as the primary does, with the exact counts.
  let last: Scrape | undefined;
  const same = (x: Map<string, Seat>, y: Map<string, Seat>) => JSON.stringify([...x]) === JSON.stringify([...y]);
  await until(
    'the sidecar serves both servers as their primaries do',
    async () => {
      last = await scrape(all.metricsUrl);
      const states = sum(last, 'gunicorn_worker_state', { state: 'running' });
      const masters = ['pod-a', 'pod-b'].every((server) => last!.samples.has(`gunicorn_master_worker_restarts_total{server="${server}"}`));
      const sampled = ['memory_bytes', 'cpu_percent', 'uptime_seconds'].every((g) => seriesOf(last!, `gunicorn_worker_${g}`).length === 3);
      return same(seatsOf(last, 'pod-a'), seatsA) && same(seatsOf(last, 'pod-b'), seatsB) && states === 3 && masters && sampled ? true : undefined;
    },
    20_000,
    () => last?.text ?? '(no scrape)',
  );
  await until(
    'the one-instance sidecar serves pod-a',
    async () => {
      last = await scrape(one.metricsUrl);
      const sampled = ['memory_bytes', 'cpu_percent', 'uptime_seconds'].every((g) => seriesOf(last!, `gunicorn_worker_${g}`).length === 2);
      return same(seatsOf(last), seatsA) && sum(last, 'gunicorn_worker_state', { state: 'running' }) === 2 && sampled ? true : undefined;
    },
    20_000,
    () => last?.text ?? '(no scrape)',
  );

  const r = await runTop(['--once', '--url', all.metricsUrl, '--interval', '0.5']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.doesNotMatch(r.stdout, ESC);
  assert.ok(r.stdout.endsWith('\n') && !r.stdout.endsWith('\n\n'), JSON.stringify(r.stdout));
  const lines = r.stdout.slice(0, -1).split('\n');
  assert.match(lines[0]!, new RegExp(`^promfork top - ${literal(all.metricsUrl)} - \\d\\d:\\d\\d:\\d\\d - rates over 0\\.\\d\\ds$`));
  assert.deepEqual(lines.slice(1, 3), ['servers: pod-a, pod-b', ''], r.stdout);
  // pod-a: 1 title + 1 header + 2 seats + total, a blank line, then pod-b: 1 + 1 + 1 + 1.
  assert.equal(lines.length, 3 + 5 + 1 + 4, r.stdout);
  assert.equal(lines[8], '');

  const check = (blk: ReturnType<typeof block>, server: string, seats: Map<string, Seat>, plan: { ok: number; failing: number }) => {
    assert.match(blk.title, new RegExp(`^server ${server} - master: ${seats.size} workers?, restarts 0, signals: none - snapshots up to \\d+\\.\\ds old$`));
    assert.deepEqual(blk.rows.map((c) => c[0]), [...seats.keys()]);
    for (const c of blk.rows) {
      const seat = seats.get(c[0]!)!;
      assert.equal(c.length, HEADER.length, c.join('|'));
      // Its own worker's pid and exact counts; no request during the interval: rates 0, no latency.
      assert.deepEqual([Number(c[1]), c[2], Number(c[3]), c[4], c[5], c[6], Number(c[7]), c[8]], [seat.pid, 'running', seat.requests, '0.0', '-', '-', seat.failures, '0.0'], c.join('|'));
      assert.match(c[9]!, /^\d+\.\d MiB$/);
      assert.match(c[10]!, /^\d+\.\d%$/);
      assert.match(c[11]!, /^\d+s$/);
    }
    assert.deepEqual(blk.total, ['total', String(plan.ok + plan.failing), '0.0', '-', '-', String(plan.failing), '0.0']);
  };
  check(block(lines, 3, 2), 'pod-a', seatsA, plan.a);
  check(block(lines, 9, 1), 'pod-b', seatsB, plan.b);
  const pids = [...block(lines, 3, 2).rows, ...block(lines, 9, 1).rows].map((c) => Number(c[1]));
  assert.deepEqual(pids.sort((x, y) => x - y), [...a.server.workerPids(), ...b.server.workerPids()].sort((x, y) => x - y));

  // --server: only pod-b's block; the others are named as found.
  const rb = await runTop(['--once', '--url', all.metricsUrl, '--interval', '0.2', '--server', 'pod-b']);
  assert.equal(rb.code, 0, rb.stderr);
  const lb = rb.stdout.slice(0, -1).split('\n');
  assert.deepEqual(lb.slice(1, 3), ['servers: pod-a, pod-b; showing pod-b', ''], rb.stdout);
  assert.equal(lb.length, 3 + 4, rb.stdout);
  check(block(lb, 3, 1), 'pod-b', seatsB, plan.b);

  // Repeated and comma forms name both: every block, no "showing".
  const rab = await runTop(['--once', '--url', all.metricsUrl, '--interval', '0.2', '--server', 'pod-b', '--server=pod-a,pod-b']);
  assert.equal(rab.code, 0, rab.stderr);
  const lab = rab.stdout.slice(0, -1).split('\n');
  assert.equal(lab[1], 'servers: pod-a, pod-b', rab.stdout);
  assert.deepEqual([lab[3], lab[9]].map((l) => l!.split(' - ')[0]), ['server pod-a', 'server pod-b']);

  // An unknown name: exit 1 at the first scrape, one line listing the servers found.
  const rx = await runTop(['--once', '--url', all.metricsUrl, '--interval', '30', '--server', 'pod-c'], 10_000);
  assert.equal(rx.code, 1);
  assert.equal(rx.stdout, '');
  assert.equal(rx.stderr, `Error: --server pod-c: no such server at ${all.metricsUrl}; the servers found there: pod-a, pod-b [PROMFORK_ERR_SCRAPE_FORMAT]\n`);

  // The sidecar serving one instance: no server label, the frame of a primary (its snapshot ages name the server,
  // which does not make it a block); --server is refused there.
  const r1 = await runTop(['--once', '--url', one.metricsUrl, '--interval', '0.2']);
  assert.equal(r1.code, 0, r1.stderr);
  const l1 = r1.stdout.slice(0, -1).split('\n');
  assert.deepEqual(l1.slice(1, 3), ['master: 2 workers, restarts 0, signals: none', ''], r1.stdout);
  assert.deepEqual(cells(l1[3]!), HEADER);
  assert.equal(l1.length, 4 + 2 + 1, r1.stdout);
  assert.deepEqual(l1.slice(4, 6).map((l) => [cells(l)[0], Number(cells(l)[1]), Number(cells(l)[3])]), [...seatsA].map(([id, s]) => [id, s.pid, s.requests]));
  assert.deepEqual(cells(l1[6]!), ['total', String(plan.a.ok + plan.a.failing), '0.0', '-', '-', String(plan.a.failing), '0.0']);
  const r1x = await runTop(['--once', '--url', one.metricsUrl, '--server', 'pod-a']);
  assert.equal(r1x.code, 1);
  assert.equal(
    r1x.stderr,
    `Error: --server pod-a: ${one.metricsUrl} has no server label (a promfork server's own endpoint, or promfork exporter without --all-instances); --server needs the endpoint of promfork exporter --all-instances [PROMFORK_ERR_SCRAPE_FORMAT]\n`,
  );

  for (const p of [all.proc, one.proc]) {
    await p.stop();
    assert.equal(p.proc.exitCode, 0, p.output);
  }
});
