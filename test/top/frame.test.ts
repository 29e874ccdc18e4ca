// Frame computation of promfork top: rates over the real time between two scrapes, quantiles from the
// histogram's bucket increases (Prometheus's histogram_quantile), counter resets, seats and the master line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseExposition } from '../../src/top/exposition-parser.js';
import { checkNamespace, computeFrame, counterDelta, histogramQuantile } from '../../src/top/frame.js';
import { PromforkError } from '../../src/errors.js';
import { BOUNDS, snap, type SeatData } from './fixtures.js';

/** A promfork exposition (namespace `ns`) with the given seats and master counters. */
function exposition(seats: Record<string, SeatData>, master: { restarts?: number; reasons?: Record<string, number>; signals?: Record<string, number> } = {}, ns = 'gunicorn'): string {
  const l: string[] = [];
  l.push(`# TYPE ${ns}_worker_requests_total counter`);
  for (const [id, s] of Object.entries(seats)) l.push(`${ns}_worker_requests_total{worker_id="${id}"} ${s.requests}`);
  l.push(`# TYPE ${ns}_worker_request_duration_seconds histogram`);
  for (const [id, s] of Object.entries(seats)) {
    BOUNDS.forEach((le, i) => l.push(`${ns}_worker_request_duration_seconds_bucket{le="${le}",worker_id="${id}"} ${s.buckets[i]}`));
    l.push(`${ns}_worker_request_duration_seconds_sum{worker_id="${id}"} 1.5`);
    l.push(`${ns}_worker_request_duration_seconds_count{worker_id="${id}"} ${s.buckets[BOUNDS.length - 1]}`);
  }
  l.push(`# TYPE ${ns}_worker_failed_requests_total counter`);
  for (const [id, s] of Object.entries(seats)) {
    for (const [endpoint, n] of Object.entries(s.failures ?? {})) {
      l.push(`${ns}_worker_failed_requests_total{worker_id="${id}",method="GET",endpoint="${endpoint}"} ${n}`);
    }
  }
  for (const [name, key] of [['memory_bytes', 'memory'], ['cpu_percent', 'cpu'], ['uptime_seconds', 'uptime']] as const) {
    l.push(`# TYPE ${ns}_worker_${name} gauge`);
    for (const [id, s] of Object.entries(seats)) if (s[key] !== undefined) l.push(`${ns}_worker_${name}{worker_id="${id}"} ${s[key]}`);
  }
  l.push(`# TYPE ${ns}_worker_state gauge`);
  for (const [id, s] of Object.entries(seats)) if (s.state) l.push(`${ns}_worker_state{worker_id="${id}",state="${s.state}",timestamp="1700000000"} 1`);
  l.push('# TYPE promfork_worker_pid gauge');
  for (const [id, s] of Object.entries(seats)) if (s.pid) l.push(`promfork_worker_pid{worker_id="${id}"} ${s.pid}`);
  l.push(`# TYPE ${ns}_master_worker_restarts_total counter`, `${ns}_master_worker_restarts_total ${master.restarts ?? 0}`);
  l.push(`# TYPE ${ns}_master_worker_restart_reasons_total counter`);
  for (const [reason, n] of Object.entries(master.reasons ?? {})) l.push(`${ns}_master_worker_restart_reasons_total{reason="${reason}"} ${n}`);
  l.push(`# TYPE ${ns}_master_signals_total counter`);
  for (const [signal, n] of Object.entries(master.signals ?? {})) l.push(`${ns}_master_signals_total{signal="${signal}"} ${n}`);
  return `${l.join('\n')}\n`;
}

const OPTS = { namespace: 'gunicorn', url: 'http://127.0.0.1:9090/metrics' };

describe('histogramQuantile', () => {
  const b = (counts: number[]) => counts.map((count, i) => ({ le: BOUNDS[i] === '+Inf' ? Infinity : Number(BOUNDS[i]), count }));

  it('interpolates linearly inside the bucket where the rank falls (from 0 in the first bucket)', () => {
    // 8 observations: 2 in (0, 0.25], 4 in (0.25, 0.5], 2 in (0.5, 1].
    assert.equal(histogramQuantile(0.5, b([2, 6, 8, 8, 8])), 0.375); // rank 4: 0.25 + 0.25 * 2/4
    assert.equal(histogramQuantile(0.99, b([2, 6, 8, 8, 8])), 0.5 + 0.5 * ((0.99 * 8 - 6) / 2)); // rank 7.92
    assert.equal(histogramQuantile(0.1, b([2, 6, 8, 8, 8])), 0.1); // rank 0.8 in the first bucket: 0.25 * 0.8/2
  });

  it('gives the highest finite bound for a rank in the +Inf bucket, and null with no observation', () => {
    assert.equal(histogramQuantile(0.5, b([0, 0, 0, 0, 3])), 2);
    assert.equal(histogramQuantile(0.99, b([0, 0, 0, 1, 3])), 2);
    assert.equal(histogramQuantile(0.5, b([0, 0, 0, 0, 0])), null);
    assert.equal(histogramQuantile(0.5, [{ le: 1, count: 3 }]), null);
    assert.equal(histogramQuantile(0.5, [{ le: 1, count: 3 }, { le: 2, count: 4 }]), null); // no +Inf bucket
  });
});

describe('counterDelta', () => {
  it('is the increase; a new series counts from zero; a counter that went down was reset', () => {
    assert.equal(counterDelta(15, 10), 5);
    assert.equal(counterDelta(7, undefined), 7);
    assert.equal(counterDelta(3, 100), 3);
    assert.equal(counterDelta(10, 10), 0);
  });
});

describe('computeFrame', () => {
  const before = exposition(
    {
      worker_0: { pid: 101, state: 'running', requests: 10, buckets: [5, 8, 10, 10, 10], failures: { '/a': 1 }, memory: 52428800, cpu: 1.5, uptime: 60 },
      worker_1: { pid: 102, state: 'running', requests: 4, buckets: [4, 4, 4, 4, 4], memory: 50000000, cpu: 0, uptime: 60 },
    },
    { restarts: 1, reasons: { crash: 1 }, signals: { hup: 0 } },
  );
  const after = exposition(
    {
      // worker_0: 8 more requests over 2 s (2 in (0, 0.25], 4 in (0.25, 0.5], 2 in (0.5, 1]), 3 more failures.
      worker_0: { pid: 101, state: 'running', requests: 18, buckets: [7, 14, 18, 18, 18], failures: { '/a': 2, '/b': 2 }, memory: 53477376, cpu: 12.25, uptime: 62 },
      // worker_1: no request in the interval.
      worker_1: { pid: 102, state: 'running', requests: 4, buckets: [4, 4, 4, 4, 4], memory: 50000000, cpu: 0, uptime: 62 },
    },
    { restarts: 2, reasons: { crash: 1, killed: 1 }, signals: { ttin: 1, hup: 2 } },
  );

  it('rates are the counter increases over the real time between the scrapes; quantiles from the bucket increases', () => {
    const f = computeFrame(snap(before, 1000), snap(after, 3000), OPTS);
    assert.equal(f.elapsedSeconds, 2);
    assert.equal(f.url, OPTS.url);
    assert.deepEqual(f.workers, [
      {
        workerId: 'worker_0', pid: 101, state: 'running',
        requests: 18, requestRate: 4, p50: 0.375, p99: 0.5 + 0.5 * ((0.99 * 8 - 6) / 2),
        failures: 4, failureRate: 1.5, memoryBytes: 53477376, cpuPercent: 12.25, uptimeSeconds: 62,
      },
      {
        workerId: 'worker_1', pid: 102, state: 'running',
        requests: 4, requestRate: 0, p50: null, p99: null,
        failures: 0, failureRate: 0, memoryBytes: 50000000, cpuPercent: 0, uptimeSeconds: 62,
      },
    ]);
    assert.deepEqual(f.total, { requests: 22, requestRate: 4, p50: 0.375, p99: 0.5 + 0.5 * ((0.99 * 8 - 6) / 2), failures: 4, failureRate: 1.5 });
    assert.deepEqual(f.master, { restarts: 2, reasons: [['crash', 1], ['killed', 1]], signals: [['hup', 2], ['ttin', 1]] });
  });

  it('a first frame has the totals and gauges but no rates or quantiles', () => {
    const f = computeFrame(null, snap(after, 3000), OPTS);
    assert.equal(f.elapsedSeconds, null);
    assert.deepEqual(
      f.workers.map((w) => [w.workerId, w.requests, w.requestRate, w.p50, w.p99, w.failures, w.failureRate, w.cpuPercent]),
      [
        ['worker_0', 18, null, null, null, 4, null, 12.25],
        ['worker_1', 4, null, null, null, 0, null, 0],
      ],
    );
    assert.equal(f.total.requestRate, null);
  });

  it('a counter that went down (the server restarted) counts from zero, never negative', () => {
    const restarted = exposition({
      worker_0: { pid: 201, state: 'booting', requests: 3, buckets: [1, 3, 3, 3, 3], failures: { '/a': 1 } },
      worker_1: { pid: 202, state: 'running', requests: 0, buckets: [0, 0, 0, 0, 0] },
    });
    const f = computeFrame(snap(after, 0), snap(restarted, 500), OPTS);
    assert.equal(f.elapsedSeconds, 0.5);
    const w0 = f.workers[0]!;
    assert.deepEqual([w0.pid, w0.state, w0.requests, w0.requestRate, w0.failures, w0.failureRate], [201, 'booting', 3, 6, 1, 2]);
    // 3 observations since the reset: 1 in (0, 0.25], 2 in (0.25, 0.5]; rank 1.5 -> 0.25 + 0.25 * 0.5/2.
    assert.equal(w0.p50, 0.3125);
    assert.equal(f.workers[1]!.requestRate, 0);
    assert.equal(f.workers[1]!.p50, null);
    assert.deepEqual([f.total.requestRate, f.total.failureRate], [6, 2]);
    // Memory, CPU and uptime not sampled yet: no value.
    assert.deepEqual([w0.memoryBytes, w0.cpuPercent, w0.uptimeSeconds], [null, null, null]);
  });

  it('rows are the live seats in seat order; a retired seat (TTOU) counts in the total only', () => {
    const three = exposition({
      worker_10: { pid: 310, state: 'running', requests: 1, buckets: [1, 1, 1, 1, 1] },
      worker_2: { pid: 302, state: 'quitting', requests: 2, buckets: [2, 2, 2, 2, 2] },
      worker_1: { requests: 5, buckets: [5, 5, 5, 5, 5] }, // no state, no pid: no live worker in the seat
    });
    const f = computeFrame(null, snap(three, 0), OPTS);
    assert.deepEqual(f.workers.map((w) => [w.workerId, w.pid, w.state]), [['worker_2', 302, 'quitting'], ['worker_10', 310, 'running']]);
    assert.equal(f.total.requests, 8);
  });

  it('another namespace: read with --namespace; a wrong one is one error naming the right one', () => {
    const text = exposition({ worker_0: { pid: 1, state: 'running', requests: 2, buckets: [2, 2, 2, 2, 2] } }, {}, 'myapp');
    const f = computeFrame(null, snap(text, 0), { ...OPTS, namespace: 'myapp' });
    assert.equal(f.workers[0]!.requests, 2);
    checkNamespace(parseExposition(text), 'myapp', OPTS.url);
    assert.throws(
      () => checkNamespace(parseExposition(text), 'gunicorn', OPTS.url),
      (err: unknown) =>
        err instanceof PromforkError &&
        err.toLine() ===
          'Error: http://127.0.0.1:9090/metrics has no gunicorn_master_worker_restarts_total metric; the server uses --metrics-namespace myapp: run promfork top --namespace myapp [PROMFORK_ERR_SCRAPE_FORMAT]',
    );
    assert.throws(
      () => checkNamespace(parseExposition('up 1\n'), 'gunicorn', OPTS.url),
      (err: unknown) =>
        err instanceof PromforkError &&
        err.toLine() ===
          'Error: http://127.0.0.1:9090/metrics has no gunicorn_master_worker_restarts_total metric; --url must name the metrics endpoint of a promfork server (promfork or promfork exporter) [PROMFORK_ERR_SCRAPE_FORMAT]',
    );
  });
});
