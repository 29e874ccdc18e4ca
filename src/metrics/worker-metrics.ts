// The per-request worker metrics of the Python Gunicorn Prometheus Exporter, as plain numbers of the worker
// process. The request path only adds to numbers that exist already: a request count, a duration sum, bucket
// counts in a typed array, and one cell per failure label set (created the first time that label set fails).
// The prom-client-shaped families (src/store/snapshot.ts) are built only when a snapshot is taken.
// No prom-client is loaded for this: its labelled inc/observe hash a label object on every call.

import type { IncomingMessage } from 'node:http';
import type { MetricFamily, Sample } from '../store/snapshot.js';
import { ERROR_PROPERTY, EndpointLabeler, methodLabel } from './endpoint.js';

/** Request duration buckets (seconds): they start well below 100 ms. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BUCKETS = Float64Array.from(DURATION_BUCKETS);

export function workerId(seat: number): string {
  return `worker_${seat}`;
}

/** One failure label set (method, endpoint): its failed count, and its cells per error type. */
interface FailureCell {
  method: string;
  endpoint: string;
  n: number;
  errors: Map<string, ErrorCell>;
}

interface ErrorCell {
  method: string;
  endpoint: string;
  type: string;
  n: number;
}

export class WorkerMetrics {
  /** Requests counted so far: also the version of these metrics (every observe adds one). */
  requests = 0;
  private durationSum = 0;
  /** Per bucket (DURATION_BUCKETS, then +Inf), the observations that fell into it (not cumulative). */
  private readonly bucketCounts = new Float64Array(BUCKETS.length + 1);
  /** method -> endpoint -> cell. */
  private readonly failures = new Map<string, Map<string, FailureCell>>();
  /** The cells in order of their first count (the series order prom-client exposes). */
  private readonly failedCells: FailureCell[] = [];
  private readonly errorCells: ErrorCell[] = [];
  private readonly workerId: string;
  private readonly endpoints: EndpointLabeler;
  private readonly names: { requests: string; duration: string; failed: string; errors: string };

  constructor(opts: {
    namespace: string;
    seat: number;
    endpointCap: number;
    endpointLabel?: (req: IncomingMessage) => string | null | undefined;
  }) {
    const ns = opts.namespace;
    this.workerId = workerId(opts.seat);
    this.names = {
      requests: `${ns}_worker_requests_total`,
      duration: `${ns}_worker_request_duration_seconds`,
      failed: `${ns}_worker_failed_requests_total`,
      errors: `${ns}_worker_error_handling_total`,
    };
    this.endpoints = new EndpointLabeler(opts.endpointCap, opts.endpointLabel);
  }

  /** Count one finished request. `error` is what the handler threw or rejected with, or null. */
  observe(req: IncomingMessage, status: number, durationNs: bigint, error: unknown): void {
    this.requests++;
    const seconds = Number(durationNs) / 1e9;
    this.durationSum += seconds;
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    this.bucketCounts[i]!++;
    if (error === null && status < 500) return;
    const method = methodLabel(req.method);
    const endpoint = this.endpoints.label(req);
    // A framework that caught the error itself answered with a status: its 4xx (a thrown "not found") is not a
    // failure, and a 5xx is named after the error an adapter handed over.
    const cause = error ?? (req as IncomingMessage & { [ERROR_PROPERTY]?: unknown })[ERROR_PROPERTY] ?? null;
    let byEndpoint = this.failures.get(method);
    if (byEndpoint === undefined) this.failures.set(method, (byEndpoint = new Map()));
    let cell = byEndpoint.get(endpoint);
    if (cell === undefined) {
      byEndpoint.set(endpoint, (cell = { method, endpoint, n: 0, errors: new Map() }));
      this.failedCells.push(cell);
    }
    cell.n++;
    const type = errorType(cause, status);
    let counter = cell.errors.get(type);
    if (counter === undefined) {
      cell.errors.set(type, (counter = { method, endpoint, type, n: 0 }));
      this.errorCells.push(counter);
    }
    counter.n++;
  }

  /** The families, in the shape and order prom-client's `getMetricsAsJSON()` gave them. */
  families(): MetricFamily[] {
    const { names, workerId: w } = this;
    const duration: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bucketCounts.length; i++) {
      cumulative += this.bucketCounts[i]!;
      const le = i < BUCKETS.length ? DURATION_BUCKETS[i]! : '+Inf';
      duration.push({ value: cumulative, metricName: `${names.duration}_bucket`, labels: { le, worker_id: w } });
    }
    duration.push({ value: this.durationSum, metricName: `${names.duration}_sum`, labels: { worker_id: w } });
    duration.push({ value: cumulative, metricName: `${names.duration}_count`, labels: { worker_id: w } });
    const failed: Sample[] = this.failedCells.map((c) => ({
      value: c.n,
      labels: { worker_id: w, method: c.method, endpoint: c.endpoint },
    }));
    const errors: Sample[] = this.errorCells.map((c) => ({
      value: c.n,
      labels: { worker_id: w, method: c.method, endpoint: c.endpoint, error_type: c.type },
    }));
    return [
      family(names.requests, 'Total requests handled by each worker', 'counter', [
        { value: this.requests, labels: { worker_id: w } },
      ]),
      family(names.duration, 'Request duration distribution (the app time, monotonic clock)', 'histogram', duration),
      family(names.failed, 'Failed requests (the handler threw or rejected, or the status was 5xx)', 'counter', failed),
      family(
        names.errors,
        'Errors by type (the error class name, or http_<status> for a 5xx without exception)',
        'counter',
        errors,
      ),
    ];
  }
}

function family(name: string, help: string, type: 'counter' | 'histogram', values: Sample[]): MetricFamily {
  return { name, help, type, values, aggregator: 'sum' };
}

export function errorType(error: unknown, status: number): string {
  if (error === null || error === undefined) return `http_${status}`;
  if (error instanceof Error) return error.constructor?.name || error.name || 'Error';
  return typeof error;
}
