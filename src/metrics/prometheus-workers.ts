// The worker classes of the Python Gunicorn Prometheus Exporter: the plain classes with the PrometheusMixin.
import { AsyncWorker } from '../workers/async-worker.js';
import { SyncWorker } from '../workers/sync-worker.js';
import { ThreadWorker } from '../workers/thread-worker.js';
import { withMetrics } from './prometheus-mixin.js';

/** Sync worker with metrics (the Python exporter's PrometheusWorker). */
export const PrometheusWorker = withMetrics(SyncWorker);
/** Event-loop worker with metrics (the Python exporter's eventlet/gevent/tornado workers, one class in Node). */
export const PrometheusAsyncWorker = withMetrics(AsyncWorker);
/** Thread worker with metrics (the Python exporter's gthread worker): the app on `threads` worker_threads per process. */
export const PrometheusThreadWorker = withMetrics(ThreadWorker);
