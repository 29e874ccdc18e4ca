// What a worker calls at fixed points, so that a worker class knows nothing of what is measured (as Gunicorn's
// workers know nothing of the Prometheus exporter): the metrics of src/metrics/prometheus-instrumentation.ts are
// one such object, attached by the worker process before the worker boots, with metrics on.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hooks, Settings } from '../config/types.js';
import type { PrimaryToWorker, WorkerToPrimary } from '../ipc.js';
import type { Logger } from '../logging/logger.js';
import type { MetricFamily } from '../store/snapshot.js';

/** What an instrumentation sees of its worker. */
export interface InstrumentedWorker {
  readonly pid: number;
  readonly ppid: number;
  readonly seat: number;
  readonly cfg: Settings;
  readonly log: Logger;
  readonly hooks: Hooks;
  /** Requests being handled now. */
  requestsInFlight(): number;
  /** Metric families held outside this thread (the thread worker's threads), as parts to merge; null: none. */
  externalMetricFamilies(): Promise<MetricFamily[][]> | null;
  /** A message to the primary (dropped once the channel is gone). */
  send(msg: WorkerToPrimary): void;
}

export interface Instrumentation {
  /** When attached (Worker.instrument), before the worker's init loads the app. */
  init(): Promise<void>;
  /** The worker serves from now on (the end of Worker.run). */
  run(): void;
  /** Once per request when its response is closed, whatever the outcome. The request path: no I/O, no allocation. */
  requestFinished(req: IncomingMessage, res: ServerResponse, durationNs: bigint, error: unknown): void;
  /** A message from the primary that the worker itself does not handle. */
  control(msg: PrimaryToWorker): void;
  /** Extra fields for the worker's heartbeats. */
  heartbeat(): { storeErrors?: number };
  /** Persist what was counted so far (the `updateMetrics` of the hook managers); false if it could not be. */
  flush(): Promise<boolean>;
  /** Before the process exits on a controlled path (after the worker's own beforeExit). */
  beforeExit(): Promise<void>;
}

export type MakeInstrumentation = (worker: InstrumentedWorker) => Instrumentation;
