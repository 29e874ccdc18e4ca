// Gunicorn's gthread worker for Node: each worker process runs the app on a pool of `threads`
// worker_threads (thread-pool.ts, thread-entry.ts), so CPU-bound handlers run in parallel inside one
// process. The process's main thread keeps what the primary talks to: the connections it is handed (piped
// as raw bytes to a thread, never parsed here), heartbeats, signals, the graceful drain, max-requests and
// metrics. Hence, as in Gunicorn:
// - `timeout` checks the main thread's liveness only: a handler busy for minutes in a thread does not stop
//   the heartbeats, so the worker is not killed for it;
// - `workerConnections` caps the open connections of the process (the primary's dispatcher enforces it, see
//   `kind` below), `threads` caps how many handlers run JavaScript at once, `keepalive` is the idle time of a
//   keep-alive connection in its thread (0: every response closes its connection);
// - max-requests counts the requests of the whole process (a counter shared by the threads);
// - TERM: stop taking connections, let the threads finish their requests (within `gracefulTimeout`), exit 0;
// - a thread that dies (uncaught exception, `process.exit()` in the app) is replaced and the process lives
//   on; its connections are closed, its requests in flight are counted as failed, the restart is counted.
//
// Every request is counted once, in the main thread, from the report the thread sends when the response is
// closed: `requestClosed` (the instrumentation's per-request metrics, then requestFinished) sees a request-like object with the
// method, url, and for failed requests the headers and route, plus the status, the app's duration measured
// in the thread and an Error of the original class. The app's own prom-client metrics live in each thread's
// registry: `externalMetricFamilies` collects them for every snapshot, summed over the threads by the
// metrics instrumentation, so the seat exposes each family once.
//
// preRequest/postRequest hooks run in the thread (Gunicorn runs them in the pool thread) with the real
// req/res; their `worker` argument is a view of this worker (pid, seat, age, cfg, log, nr, alive) plus the
// thread's id. Other hooks run in the main thread with this object.

import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Hooks } from '../config/types.js';
import { callHook } from '../hooks/call-hook.js';
import type { WorkerSpec } from '../ipc.js';
import type { Logger } from '../logging/logger.js';
import { workerId } from '../metrics/worker-metrics.js';
import type { MetricFamily } from '../store/snapshot.js';
import { Worker, type WorkerKind } from './base-worker.js';
import { fromWireError, type RequestReport } from './thread-protocol.js';
import { ThreadPool } from './thread-pool.js';

export class ThreadWorker extends Worker {
  /**
   * 'async' for the primary: it hands this worker up to `workerConnections` open connections, least-loaded
   * worker first, exactly Gunicorn's gthread admission (the cap is on connections, not requests; the threads
   * bound the concurrency inside the process).
   */
  static override readonly kind: WorkerKind = 'async';

  pool!: ThreadPool;
  /** The config file, which a thread imports for the preRequest/postRequest hooks. */
  private readonly configFile: string | null;

  constructor(spec: WorkerSpec, hooks: Hooks, log: Logger) {
    super(spec, hooks, log);
    this.configFile = spec.configFile;
  }

  /** Number of handler threads. */
  get threads(): number {
    return this.cfg.threads;
  }

  /** Handler threads that died and were replaced in this process. */
  get threadRestarts(): number {
    return this.pool?.restarts ?? 0;
  }

  /** Gunicorn's init_process: postFork, every thread loads the app, postWorkerInit. */
  override async init(): Promise<void> {
    await callHook(this.log, this.hooks, 'postFork', this.arbiter, this);
    const reportStarts = this.requestStarted !== (Worker.prototype as unknown as ThreadWorker).requestStarted;
    this.pool = new ThreadPool({
      size: this.cfg.threads,
      data: {
        settings: this.cfg,
        configFile: this.configFile,
        requestHooks: Boolean(this.hooks.preRequest || this.hooks.postRequest),
        reportStarts,
        maxRequests: this.maxRequests,
        pid: this.pid,
        ppid: this.ppid,
        age: this.age,
        seat: this.seat,
      },
      log: this.log,
      events: {
        started: (method, url) => this.requestStarted(requestView({ method, url, status: 0, ns: 0 })),
        finished: (report) => this.onFinished(report),
        maxed: () => {
          if (!this.alive) return;
          this.log.info('Autorestarting worker after current request.');
          this.beginShutdown('max-requests');
        },
        fatal: (err) => {
          this.log.critical(`A worker thread could not be replaced (pid:${this.pid})`, err);
          void this.exit(1);
        },
      },
    });
    await this.pool.start();
    this.log.debug(`Worker ${this.pid}: ${this.cfg.threads} thread(s) loaded the app`);
    this.app = () => {
      throw new Error('ThreadWorker: the app runs in the worker threads');
    };
    await callHook(this.log, this.hooks, 'postWorkerInit', this);
  }

  /** Requests finished (reported by the threads, or lost with one). */
  private requestsDone = 0;

  /** The threads' servers close their idle connections themselves (thread-entry's drain). */
  protected override idleCandidates(): Iterable<Socket> {
    return [];
  }

  protected override get acceptPaused(): boolean {
    return true;
  }

  protected override serveConnection(socket: Socket): void {
    this.pool.assign(socket);
  }

  override beginShutdown(reason: 'term' | 'max-requests' | 'parent'): void {
    const wasAlive = this.alive;
    super.beginShutdown(reason);
    if (wasAlive) this.pool.drain();
  }

  protected override externalMetricFamilies(): Promise<MetricFamily[][]> {
    // Well inside the scrape's deadline: a thread busy with a CPU-bound handler is served from its last answer.
    const deadlineMs = Math.min(1000, Math.max(10, this.cfg.scrapeTimeout * 400));
    return this.pool.collect(deadlineMs).then((parts) => {
      const restarts = this.pool.restarts;
      if (restarts > 0) parts.push([threadRestartsFamily(this.seat, restarts)]);
      return parts;
    });
  }

  protected override requestsInFlight(): number {
    return Math.max(0, this.pool.requestsStarted - this.requestsDone);
  }

  private onFinished(report: RequestReport): void {
    this.requestsDone++;
    this.nr = this.pool.requestsStarted;
    const req = requestView(report);
    const res = { statusCode: report.status } as http.ServerResponse;
    const error = report.error ? fromWireError(report.error) : null;
    this.requestClosed(req, res, BigInt(Math.max(0, Math.round(report.ns))), error);
    if (report.access) this.log.access(report.access);
  }
}

/** The request as the main thread's accounting sees it: what the endpoint label is computed from. */
function requestView(r: RequestReport): http.IncomingMessage {
  return {
    method: r.method,
    url: r.url,
    headers: r.headers ?? {},
    route: r.route,
    baseUrl: r.route?.baseUrl,
    promforkRoute: r.promforkRoute,
  } as unknown as http.IncomingMessage;
}

function threadRestartsFamily(seat: number, restarts: number): MetricFamily {
  return {
    name: 'promfork_worker_thread_restarts_total',
    help: 'Worker threads of the thread worker that died and were replaced',
    type: 'counter',
    aggregator: 'sum',
    values: [{ value: restarts, labels: { worker_id: workerId(seat) } }],
  };
}
