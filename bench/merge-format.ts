// Micro-benchmark of the scrape's CPU work in the primary: mergeFamilies + formatPrometheus over 32 worker
// snapshots of 1,000 series each (plus retired totals folded from 8 dead workers of the same seats).
// Prints medians; the figure asked for is the first line's `median` (merge + format).
//
//   node --import tsx bench/merge-format.ts [workers=32] [runs=20]
//
// Each snapshot, in prom-client's getMetricsAsJSON() shape:
//   4 gauges (memory, cpu, uptime, state)                                                  4 series
//   gunicorn_worker_request_duration_seconds{worker_id,method}: 4 x (15 buckets, +Inf, sum, count)  72 series
//   gunicorn_worker_requests_total{worker_id}                                               1 series
//   gunicorn_worker_failed_requests_total{worker_id,method,endpoint}: 4 x 115             460 series
//   gunicorn_worker_error_handling_total{worker_id,method,endpoint,error_type}             463 series
//                                                                                       = 1,000 series

import { performance } from 'node:perf_hooks';
import { mergeFamilies, RetiredTotals } from '../src/exporter/merge.js';
import { formatOpenMetrics, formatPrometheus } from '../src/exporter/exposition.js';
import type { MetricFamily, Sample } from '../src/store/snapshot.js';

const WORKERS = Number(process.argv[2] ?? 32);
const RUNS = Number(process.argv[3] ?? 20);
const WARMUP = 5;
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10];
const ERROR_TYPES = ['TypeError', 'RangeError', 'SyntaxError', 'http_500', 'http_503'];

function snapshot(seat: number, scale: number): MetricFamily[] {
  const worker_id = `worker_${seat}`;
  const fam = (name: string, type: MetricFamily['type'], values: Sample[]): MetricFamily => ({
    name, help: `${name} help`, type, values, aggregator: 'sum',
  });
  const histogram: Sample[] = [];
  for (const method of METHODS) {
    let acc = 0;
    for (const le of BUCKETS) {
      acc += scale;
      histogram.push({ value: acc, labels: { le, worker_id, method }, metricName: 'gunicorn_worker_request_duration_seconds_bucket' });
    }
    histogram.push({ value: acc, labels: { le: '+Inf', worker_id, method }, metricName: 'gunicorn_worker_request_duration_seconds_bucket' });
    histogram.push({ value: acc * 0.042, labels: { worker_id, method }, metricName: 'gunicorn_worker_request_duration_seconds_sum' });
    histogram.push({ value: acc, labels: { worker_id, method }, metricName: 'gunicorn_worker_request_duration_seconds_count' });
  }
  const failed: Sample[] = [];
  for (const method of METHODS) {
    for (let e = 0; e < 115; e++) failed.push({ value: scale * (e + 1), labels: { worker_id, method, endpoint: `/api/v1/resource_${e}/:id` } });
  }
  const errors: Sample[] = [];
  for (let i = 0; i < 463; i++) {
    errors.push({
      value: scale * (i % 7),
      labels: { worker_id, method: METHODS[i % 4], endpoint: `/api/v1/resource_${i % 115}/:id`, error_type: ERROR_TYPES[Math.floor(i / 115)] },
    });
  }
  return [
    fam('gunicorn_worker_cpu_percent', 'gauge', [{ value: 12.5, labels: { worker_id } }]),
    fam('gunicorn_worker_error_handling_total', 'counter', errors),
    fam('gunicorn_worker_failed_requests_total', 'counter', failed),
    fam('gunicorn_worker_memory_bytes', 'gauge', [{ value: 52_428_800 + seat, labels: { worker_id } }]),
    fam('gunicorn_worker_request_duration_seconds', 'histogram', histogram),
    fam('gunicorn_worker_requests_total', 'counter', [{ value: 1000 * scale, labels: { worker_id } }]),
    fam('gunicorn_worker_state', 'gauge', [{ value: 1, labels: { worker_id, state: 'running', timestamp: 1_700_000_000 } }]),
    fam('gunicorn_worker_uptime_seconds', 'gauge', [{ value: 3600.25, labels: { worker_id } }]),
  ];
}

// Through JSON, as the store reads snapshots (flat strings, JSON.parse's object shapes).
const live = Array.from({ length: WORKERS }, (_, seat) => JSON.parse(JSON.stringify(snapshot(seat, 3))) as MetricFamily[]);
const series = live.reduce((n, s) => n + s.reduce((m, f) => m + f.values.length, 0), 0);
const retired = new RetiredTotals();
for (let seat = 0; seat < 8; seat++) retired.fold(snapshot(seat, 5));
const parts = [retired.families(), ...live];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Figures { merge: number; format: number; total: number; encode: number; bytes: number; out: number }

function measure(format: (families: MetricFamily[]) => string): Figures {
  const merges: number[] = [];
  const formats: number[] = [];
  const totals: number[] = [];
  const encodes: number[] = [];
  let bytes = 0;
  let out = 0;
  for (let run = 0; run < WARMUP + RUNS; run++) {
    const t0 = performance.now();
    const { families } = mergeFamilies(parts);
    const t1 = performance.now();
    const text = format(families);
    const t2 = performance.now();
    // What res.end(text) does next: encode to UTF-8 (would include flattening, had the formatter built a rope).
    bytes = Buffer.from(text, 'utf8').length;
    const t3 = performance.now();
    out = families.reduce((n, f) => n + f.values.length, 0);
    if (run >= WARMUP) {
      merges.push(t1 - t0);
      formats.push(t2 - t1);
      totals.push(t2 - t0);
      encodes.push(t3 - t2);
    }
  }
  return { merge: median(merges), format: median(formats), total: median(totals), encode: median(encodes), bytes, out };
}

const prom = measure(formatPrometheus);
const om = measure(formatOpenMetrics);
const ms = (x: number): string => x.toFixed(2);
console.log(`input: ${WORKERS} snapshots, ${series} series, + retired totals of ${retired.size} series; ${RUNS} runs after ${WARMUP} warm-up; Node ${process.version}`);
console.log(`output: ${prom.out} series, Prometheus ${(prom.bytes / 1e6).toFixed(2)} MB, OpenMetrics ${(om.bytes / 1e6).toFixed(2)} MB`);
const line = (f: Figures): string =>
  `median ${ms(f.total)} ms  (merge ${ms(f.merge)} ms, format ${ms(f.format)} ms; then UTF-8 encoding ${ms(f.encode)} ms)`;
console.log(`mergeFamilies + formatPrometheus:  ${line(prom)}`);
console.log(`mergeFamilies + formatOpenMetrics: ${line(om)}`);
