// The "Redis backend" configuration (gunicorn_redis_backend.conf.py) of the Python Gunicorn Prometheus Exporter's API reference, for promfork:
//   promfork -c examples/promfork.redis-backend.config.js examples/plain.js
import { redisWhenReady, defaultOnStarting, defaultWorkerInt, defaultOnExit } from 'promfork/hooks';

process.env.REDIS_ENABLED ??= 'true';
process.env.REDIS_HOST ??= 'localhost';
process.env.REDIS_PORT ??= '6379';
process.env.REDIS_DB ??= '0';
process.env.REDIS_KEY_PREFIX ??= 'gunicorn';

export const bind = '0.0.0.0:8000';
export const workers = 4;
export const workerClass = 'PrometheusWorker';

export const whenReady = redisWhenReady;
export const onStarting = defaultOnStarting;
export const workerInt = defaultWorkerInt;
export const onExit = defaultOnExit;
