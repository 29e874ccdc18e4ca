// The "Redis Configuration" (gunicorn_redis.conf.py) of the Python Gunicorn Prometheus Exporter's API reference, for promfork:
//   promfork -c examples/promfork.redis.config.js examples/plain.js
// Metrics snapshots go to Redis (no files); `promfork exporter --redis` can serve them from a sidecar.
import {
  defaultOnStarting,
  redisWhenReady,
  defaultWorkerInt,
  defaultOnExit,
  defaultPostFork,
} from 'promfork/hooks';

process.env.PROMETHEUS_MULTIPROC_DIR ??= '/tmp/prometheus_multiproc';
process.env.PROMETHEUS_METRICS_PORT ??= '9090';
process.env.REDIS_ENABLED ??= 'true';
process.env.REDIS_HOST ??= 'localhost';
process.env.REDIS_PORT ??= '6379';

export const bind = '0.0.0.0:8000';
export const workers = 2;
export const workerClass = 'PrometheusWorker';

// Redis-enabled hooks
export const whenReady = redisWhenReady;
export const onStarting = defaultOnStarting;
export const workerInt = defaultWorkerInt;
export const onExit = defaultOnExit;
export const postFork = defaultPostFork;
