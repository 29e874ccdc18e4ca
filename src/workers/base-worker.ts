// The worker process: receives connections from the primary, runs the app, beats, and shuts down
// with Gunicorn's signal semantics (TERM graceful, INT/QUIT immediate, ABRT on timeout).
// Subclasses choose the concurrency (sync: one connection at a time; async: the event loop).

import http from 'node:http';
import type { Socket } from 'node:net';
import type { Hooks, Settings } from '../config/types.js';
import { callHook, callHookSync } from '../hooks/call-hook.js';
import type { PrimaryToWorker, WorkerSpec, WorkerToPrimary } from '../ipc.js';
import { isMessage } from '../ipc.js';
import { compileAccessLog } from '../logging/access-log.js';
import type { Logger } from '../logging/logger.js';
import type { MetricFamily } from '../store/snapshot.js';
import { loadApp, type RequestListener } from './app-loader.js';
import { closeIdleConnectionsSafely, silentAllowanceMs } from './drain.js';
import { answerInternalError } from './internal-error.js';

export type WorkerKind = 'sync' | 'async';

/** What hooks running inside a worker see as "the arbiter": the primary's pid and the settings. */
export interface ArbiterRef {
  pid: number;
  cfg: Settings;
}

export interface WorkerClass {
  new (spec: WorkerSpec, hooks: Hooks, log: Logger): Worker;
  readonly kind: WorkerKind;
}

export abstract class Worker {
  static readonly kind: WorkerKind = 'async';

  readonly pid = process.pid;
  readonly ppid: number;
  readonly age: number;
  /** Stable seat number: a replacement worker takes over the seat of the one it replaces. */
  readonly seat: number;
  readonly cfg: Settings;
  readonly log: Logger;
  readonly hooks: Hooks;
  readonly maxRequests: number;
  readonly arbiter: ArbiterRef;
  alive = true;
  booted = false;
  aborted = false;
  /** Requests handled so far (counts towards maxRequests). */
  nr = 0;
  app!: RequestListener;

  protected readonly server: http.Server;
  protected readonly connections = new Set<Socket>();
  private readonly inflight = new Set<http.ServerResponse>();
  /** Sync workers: connections that carried a request (their idle report is sent at response end). */
  private readonly servedSockets = new WeakSet<Socket>();
  private readonly forceClose: boolean;
  /** Gunicorn's default pre_request logs "METHOD PATH" at debug level. */
  private readonly debugRequests: boolean;
  private readonly accessLine: ((info: Parameters<ReturnType<typeof compileAccessLog>>[0]) => string) | null;
  private drained = false;
  private exiting = false;
  private closedSinceReport = 0;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(spec: WorkerSpec, hooks: Hooks, log: Logger) {
    this.ppid = spec.ppid;
    this.age = spec.age;
    this.seat = spec.seat;
    this.cfg = spec.settings;
    this.maxRequests = spec.maxRequests;
    this.hooks = hooks;
    this.log = log;
    this.arbiter = { pid: spec.ppid, cfg: spec.settings };
    const kind = (this.constructor as WorkerClass).kind;
    this.forceClose = kind === 'sync' || this.cfg.keepalive <= 0;
    this.debugRequests = !hooks.preRequest && log.isEnabledFor('debug');
    this.accessLine = this.cfg.accesslog ? compileAccessLog(this.cfg.accessLogFormat) : null;
    const keepAliveMs = Math.round(this.cfg.keepalive * 1000);
    this.server = http.createServer({
      keepAliveTimeout: keepAliveMs,
      // Node requires headersTimeout > keepAliveTimeout to close idle sockets cleanly.
      headersTimeout: Math.max(60_000, keepAliveMs + 1000),
    });
    this.server.on('request', (req, res) => this.handleRequest(req, res));
    // The server never listens (connections come from the primary), but Node only tracks connections, and so
    // only closes idle keep-alive ones on closeIdleConnections() and enforces headersTimeout/requestTimeout,
    // once it has seen 'listening'. Without this an idle keep-alive client holds a stopping worker until the
    // graceful timeout.
    this.server.emit('listening');
  }

  get kind(): WorkerKind {
    return (this.constructor as WorkerClass).kind;
  }

  /** Gunicorn's init_process: post_fork, import the app, post_worker_init. Throws boot errors. */
  async init(): Promise<void> {
    await callHook(this.log, this.hooks, 'postFork', this.arbiter, this);
    this.app = await loadApp(this.cfg.app ?? '', this.cfg.chdir);
    await callHook(this.log, this.hooks, 'postWorkerInit', this);
  }

  /** Start serving: connections come from the primary over IPC. */
  run(): void {
    this.installSignals();
    process.on('message', (msg: unknown, handle: unknown) => this.onMessage(msg, handle));
    process.on('disconnect', () => {
      this.log.info('Parent changed, shutting down');
      this.drained = true;
      this.beginShutdown('parent');
    });
    const beatMs = this.cfg.timeout > 0 ? Math.min(1000, Math.max(100, (this.cfg.timeout * 1000) / 4)) : 1000;
    this.heartbeat = setInterval(() => this.beat(), beatMs);
    this.booted = true;
    this.send({ t: 'booted' });
  }

  // ---- instrumentation points (the metrics mixin overrides these; no I/O allowed here) ----

  /** Called when a request starts, before the app runs. */
  protected requestStarted(_req: http.IncomingMessage): void {}

  /** Called once per request when its response is closed, whatever the outcome. */
  protected requestFinished(
    _req: http.IncomingMessage,
    _res: http.ServerResponse,
    _durationNs: bigint,
    _error: unknown,
  ): void {}

  /** Called before the process exits on a controlled path (flush state). */
  protected async beforeExit(): Promise<void> {}

  /**
   * Metric families held outside this thread's registries, as parts to merge (counters and histograms
   * summed): the thread worker's handler threads each have the app's prom-client registry. The metrics
   * mixin merges them into its snapshots. Null: there are none.
   */
  protected externalMetricFamilies(): Promise<MetricFamily[][]> | null {
    return null;
  }

  // ---- connections and requests ----

  protected onMessage(msg: unknown, handle: unknown): void {
    if (!isMessage(msg)) return;
    const m = msg as PrimaryToWorker;
    if (m.t === 'conn' && handle) this.acceptConnection(handle as Socket);
    else if (m.t === 'drained') {
      this.drained = true;
      this.maybeExit();
    } else this.onControl(m);
  }

  /** Other primary messages (the metrics mixin answers `flush`). */
  protected onControl(_msg: PrimaryToWorker): void {}

  /** Extra fields for heartbeats (the metrics mixin reports store errors). */
  protected heartbeatInfo(): { storeErrors?: number } {
    return {};
  }

  private acceptConnection(socket: Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.onConnectionClosed(socket));
    this.serveConnection(socket);
  }

  /** Serve an accepted connection (tracked in `connections`). The thread worker pipes it to a thread instead. */
  protected serveConnection(socket: Socket): void {
    this.server.emit('connection', socket);
    // pauseOnConnect in the primary: nothing has been read yet, start reading here.
    socket.resume();
  }

  private onConnectionClosed(socket: Socket): void {
    this.connections.delete(socket);
    if (this.alive) {
      // A sync worker reports idle when its response is done (see handleRequest); here only
      // for a connection that carried no request (closed early, or a malformed one).
      if (this.kind !== 'sync') this.reportClosed();
      else if (!this.servedSockets.has(socket)) this.send({ t: 'idle' });
    }
    this.maybeExit();
  }

  /** Coalesce connection-closed reports: one IPC message per event-loop turn at most. */
  private reportClosed(): void {
    if (this.closedSinceReport++ > 0) return;
    setImmediate(() => {
      const n = this.closedSinceReport;
      this.closedSinceReport = 0;
      this.send({ t: 'closed', n });
    });
  }

  private handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.nr++;
    this.inflight.add(res);
    if (this.kind === 'sync') this.servedSockets.add(req.socket);
    if (this.forceClose || !this.alive) res.shouldKeepAlive = false;
    const start = process.hrtime.bigint();
    const startWall = this.accessLine ? new Date() : null;
    const bytesAtStart = this.accessLine ? req.socket.bytesWritten : 0;
    let error: unknown = null;
    const fail = (err: unknown) => {
      if (error === null) error = err ?? new Error('request handler rejected');
      this.log.error(`Error handling request ${req.method} ${req.url}`, err);
      answerInternalError(res);
    };
    res.once('close', () => {
      this.inflight.delete(res);
      const durationNs = process.hrtime.bigint() - start;
      this.requestFinished(req, res, durationNs, error);
      if (this.accessLine && startWall) this.writeAccessLog(req, res, startWall, durationNs, bytesAtStart);
      if (this.hooks.postRequest) callHookSync(this.log, this.hooks, 'postRequest', this, req, res);
      if (!this.alive && !req.socket.destroyed) req.socket.end();
      // Connection: close, so this connection carries nothing more: take the next one now
      // instead of waiting for the client to close its side.
      else if (this.kind === 'sync') this.send({ t: 'idle' });
    });
    // As Gunicorn: decided when the last allowed request starts, so the primary sends no more.
    if (this.maxRequests > 0 && this.nr >= this.maxRequests && this.alive) {
      this.log.info('Autorestarting worker after current request.');
      this.beginShutdown('max-requests');
    }
    this.requestStarted(req);
    if (this.hooks.preRequest) callHookSync(this.log, this.hooks, 'preRequest', this, req);
    else if (this.debugRequests) this.log.debug(`${req.method} ${req.url}`);
    try {
      const result = this.app(req, res) as Promise<unknown> | undefined;
      if (result && typeof result.then === 'function') result.then(undefined, fail);
    } catch (err) {
      fail(err);
    }
  }

  private writeAccessLog(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    startTime: Date,
    durationNs: bigint,
    bytesAtStart: number,
  ): void {
    try {
      const headerBytes = (res as unknown as { _header?: string })._header?.length ?? 0;
      const bytesSent = Math.max(0, req.socket.bytesWritten - bytesAtStart - headerBytes);
      this.log.access(this.accessLine!({ req, res, startTime, durationNs, bytesSent, pid: this.pid }));
    } catch (err) {
      this.log.error('access log failed', err);
    }
  }

  // ---- lifecycle ----

  private installSignals(): void {
    process.on('SIGTERM', () => this.beginShutdown('term'));
    const quit = () => void this.quit();
    process.on('SIGINT', quit);
    process.on('SIGQUIT', quit);
    process.on('SIGABRT', () => void this.abort());
    process.on('SIGUSR1', () => this.log.reopen());
    process.on('SIGWINCH', () => this.log.debug('worker: SIGWINCH ignored'));
  }

  private beat(): void {
    if (process.ppid !== this.ppid && this.alive) {
      this.log.info('Parent changed, shutting down');
      this.drained = true;
      this.beginShutdown('parent');
      return;
    }
    this.send({ t: 'hb', ...this.heartbeatInfo() });
  }

  /** Graceful stop (TERM, max-requests, parent gone): finish in-flight requests, then exit 0. */
  beginShutdown(reason: 'term' | 'max-requests' | 'parent'): void {
    if (!this.alive) return;
    this.alive = false;
    this.send({ t: 'quit', reason });
    for (const res of this.inflight) {
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
    closeIdleConnectionsSafely(this.server, this.connections, silentAllowanceMs(this.cfg.keepalive));
    const deadline = setTimeout(() => {
      this.log.warning(`Worker graceful timeout (pid:${this.pid})`);
      this.server.closeAllConnections();
      for (const socket of this.connections) socket.destroy();
      void this.exit(0);
    }, this.cfg.gracefulTimeout * 1000);
    deadline.unref();
    this.maybeExit();
  }

  /** INT/QUIT: immediate exit; in-flight requests are cut. */
  private async quit(): Promise<void> {
    this.alive = false;
    await callHook(this.log, this.hooks, 'workerInt', this);
    await this.exit(0);
  }

  /** ABRT: the primary timed this worker out. */
  private async abort(): Promise<void> {
    this.alive = false;
    this.aborted = true;
    await callHook(this.log, this.hooks, 'workerAbort', this);
    await this.exit(1);
  }

  private maybeExit(): void {
    if (!this.alive && this.drained && this.connections.size === 0) void this.exit(0);
  }

  async exit(code: number): Promise<never | void> {
    if (this.exiting) return;
    this.exiting = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    try {
      await this.beforeExit();
    } catch (err) {
      this.log.error('worker: final flush failed', err);
    }
    await callHook(this.log, this.hooks, 'workerExit', this.arbiter, this);
    this.log.info(`Worker exiting (pid: ${this.pid})`);
    process.exit(code);
  }

  protected send(msg: WorkerToPrimary): void {
    if (!process.connected || !process.send) return;
    try {
      process.send(msg, undefined, undefined, () => {});
    } catch {
      // the primary is gone; the disconnect handler takes it from here
    }
  }
}
