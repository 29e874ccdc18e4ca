// The event-loop worker (Gunicorn's gevent/eventlet/asgi counterpart): many connections per process,
// at most `workerConnections` at once (enforced by the primary's dispatcher), keep-alive of `keepalive` s.

import { Worker, type WorkerKind } from './base-worker.js';

export class AsyncWorker extends Worker {
  static override readonly kind: WorkerKind = 'async';
}
