// The "Basic Configuration" (gunicorn_basic.conf.py) of the Python Gunicorn Prometheus Exporter's API reference, for promfork:
//   promfork -c examples/promfork.basic.config.js examples/plain.js
// Environment variables are set before anything reads them, as in its example.
import {
  defaultOnStarting,
  defaultWhenReady,
  defaultWorkerInt,
  defaultOnExit,
  defaultPostFork,
} from 'promfork/hooks';

process.env.PROMETHEUS_MULTIPROC_DIR ??= '/tmp/prometheus_multiproc';
process.env.PROMETHEUS_METRICS_PORT ??= '9090';
process.env.PROMETHEUS_BIND_ADDRESS ??= '127.0.0.1';

// Server settings
export const bind = '0.0.0.0:8000';
export const workers = 2;
export const workerClass = 'PrometheusWorker';

// The pre-built hooks (promfork also runs them by default; naming them is what its example does)
export const whenReady = defaultWhenReady;
export const onStarting = defaultOnStarting;
export const workerInt = defaultWorkerInt;
export const onExit = defaultOnExit;
export const postFork = defaultPostFork;
