// The plain-number request metrics expose exactly what prom-client's labelled counters and histogram expose for
// the same requests (the shape the store, the merge and dashboards rely on), byte for byte in both formats.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { formatOpenMetrics, formatPrometheus } from '../../src/exporter/exposition.js';
import { DURATION_BUCKETS, WorkerMetrics, errorType, workerId } from '../../src/metrics/worker-metrics.js';
import { EndpointLabeler, methodLabel } from '../../src/metrics/endpoint.js';
import type { MetricFamily } from '../../src/store/snapshot.js';

const req = (method: string, url: string) => ({ method, url }) as unknown as IncomingMessage;

/** The reference: prom-client's metrics as the worker had them before the plain-number path. */
function reference(ns: string, seat: number) {
  const registry = new Registry();
  const registers = [registry];
  const w = workerId(seat);
  const requests = new Counter({ name: `${ns}_worker_requests_total`, help: 'Total requests handled by each worker', labelNames: ['worker_id'], registers });
  const duration = new Histogram({
    name: `${ns}_worker_request_duration_seconds`,
    help: 'Request duration distribution (the app time, monotonic clock)',
    labelNames: ['worker_id'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const failed = new Counter({
    name: `${ns}_worker_failed_requests_total`,
    help: 'Failed requests (the handler threw or rejected, or the status was 5xx)',
    labelNames: ['worker_id', 'method', 'endpoint'],
    registers,
  });
  const errors = new Counter({
    name: `${ns}_worker_error_handling_total`,
    help: 'Errors by type (the error class name, or http_<status> for a 5xx without exception)',
    labelNames: ['worker_id', 'method', 'endpoint', 'error_type'],
    registers,
  });
  requests.inc({ worker_id: w }, 0);
  duration.zero({ worker_id: w });
  const endpoints = new EndpointLabeler(3);
  return {
    registry,
    observe(r: IncomingMessage, status: number, ns_: bigint, error: unknown) {
      requests.inc({ worker_id: w });
      duration.observe({ worker_id: w }, Number(ns_) / 1e9);
      if (error === null && status < 500) return;
      const method = methodLabel(r.method);
      const endpoint = endpoints.label(r);
      failed.inc({ worker_id: w, method, endpoint });
      errors.inc({ worker_id: w, method, endpoint, error_type: errorType(error, status) });
    },
  };
}

describe('WorkerMetrics (plain numbers)', () => {
  it('exposes what prom-client exposes for the same requests, in both formats', async () => {
    const ours = new WorkerMetrics({ namespace: 'app', seat: 3, endpointCap: 3 });
    const theirs = reference('app', 3);
    const empty = async () => (await theirs.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    assert.equal(formatPrometheus(ours.families()), formatPrometheus(await empty()), 'before any request');
    // Durations on, below and above every bucket bound, failures over more endpoints than the cap.
    const durations = [0n, 1_000_000n, 999_999n, 1_000_001n, 60_000_000_000n, 61_000_000_000n, 2_500_000n, 123_456_789n];
    let i = 0;
    for (const d of durations) {
      for (const [status, error] of [[200, null], [500, new TypeError('x')], [503, null], [404, null], [200, 'str']] as const) {
        const r = req(i % 7 === 0 ? 'PROPFIND' : 'GET', `/things/${i % 5}/x${i % 6}`);
        ours.observe(r, status, d, error);
        theirs.observe(r, status, d, error);
        i++;
      }
    }
    const expected = (await theirs.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    assert.equal(formatPrometheus(ours.families()), formatPrometheus(expected));
    assert.equal(formatOpenMetrics(ours.families()), formatOpenMetrics(expected));
    assert.equal(ours.requests, durations.length * 5);
  });
});

describe('busyPushMs: how often a busy worker pushes (what a SIGKILL can lose)', () => {
  it('is 250 ms up to 8 workers, 30 ms per worker beyond, never above the flush interval', async () => {
    const { busyPushMs } = await import('../../src/metrics/prometheus-instrumentation.js');
    assert.equal(busyPushMs(1000, 1), 250);
    assert.equal(busyPushMs(1000, 8), 250);
    assert.equal(busyPushMs(1000, 16), 480);
    assert.equal(busyPushMs(1000, 32), 960);
    assert.equal(busyPushMs(1000, 64), 1000);
    assert.equal(busyPushMs(100, 2), 100);
  });
});
