// Gunicorn's sync worker: one connection (and so one request) at a time per process.
// The primary hands a connection only to an idle sync worker; every response is `Connection: close`,
// and the primary's timeout caps how long one request may take.

import { Worker, type WorkerKind } from './base-worker.js';

export class SyncWorker extends Worker {
  static override readonly kind: WorkerKind = 'sync';
}
