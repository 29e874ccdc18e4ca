// The seed's per-request worker metrics, in a private prom-client registry of the worker process.
// Label children are bound once at boot: the request path only increments numbers in memory.

import type { IncomingMessage } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { ERROR_PROPERTY, EndpointLabeler, methodLabel } from './endpoint.js';

/** Request duration buckets (seconds): they start well below 100 ms. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function workerId(seat: number): string {
  return `worker_${seat}`;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly workerId: string;
  private readonly requests: { inc(v?: number): void };
  private readonly duration: { observe(v: number): void };
  private readonly failed: Counter<'worker_id' | 'method' | 'endpoint'>;
  private readonly errors: Counter<'worker_id' | 'method' | 'endpoint' | 'error_type'>;
  private readonly endpoints: EndpointLabeler;

  constructor(opts: {
    namespace: string;
    seat: number;
    endpointCap: number;
    endpointLabel?: (req: IncomingMessage) => string | null | undefined;
  }) {
    const ns = opts.namespace;
    const registers = [this.registry];
    this.workerId = workerId(opts.seat);
    const requests = new Counter({
      name: `${ns}_worker_requests_total`,
      help: 'Total requests handled by each worker',
      labelNames: ['worker_id'],
      registers,
    });
    const duration = new Histogram({
      name: `${ns}_worker_request_duration_seconds`,
      help: 'Request duration distribution (the app time, monotonic clock)',
      labelNames: ['worker_id'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.failed = new Counter({
      name: `${ns}_worker_failed_requests_total`,
      help: 'Failed requests (the handler threw or rejected, or the status was 5xx)',
      labelNames: ['worker_id', 'method', 'endpoint'],
      registers,
    });
    this.errors = new Counter({
      name: `${ns}_worker_error_handling_total`,
      help: 'Errors by type (the error class name, or http_<status> for a 5xx without exception)',
      labelNames: ['worker_id', 'method', 'endpoint', 'error_type'],
      registers,
    });
    // Series exist from the start at zero: a scrape before any traffic shows the worker.
    requests.inc({ worker_id: this.workerId }, 0);
    duration.zero({ worker_id: this.workerId });
    this.requests = requests.labels(this.workerId);
    this.duration = duration.labels(this.workerId);
    this.endpoints = new EndpointLabeler(opts.endpointCap, opts.endpointLabel);
  }

  /** Count one finished request. `error` is what the handler threw or rejected with, or null. */
  observe(req: IncomingMessage, status: number, durationNs: bigint, error: unknown): void {
    this.requests.inc();
    this.duration.observe(Number(durationNs) / 1e9);
    if (error === null && status < 500) return;
    const method = methodLabel(req.method);
    const endpoint = this.endpoints.label(req);
    // A framework that caught the error itself answered with a status: its 4xx (a thrown "not found") is not a
    // failure, and a 5xx is named after the error an adapter handed over.
    const cause = error ?? (req as IncomingMessage & { [ERROR_PROPERTY]?: unknown })[ERROR_PROPERTY] ?? null;
    this.failed.inc({ worker_id: this.workerId, method, endpoint });
    this.errors.inc({ worker_id: this.workerId, method, endpoint, error_type: errorType(cause, status) });
  }
}

export function errorType(error: unknown, status: number): string {
  if (error === null || error === undefined) return `http_${status}`;
  if (error instanceof Error) return error.constructor?.name || error.name || 'Error';
  return typeof error;
}
