// The worker process: accepts connections from the listening sockets the primary gives it (as Gunicorn's
// workers do), runs the app, beats, and shuts down with Gunicorn's signal semantics (TERM graceful,
// INT/QUIT immediate, ABRT on timeout). Subclasses choose the concurrency (sync: one request at a time;
// async: the event loop; thread: a pool of threads).
//
// Accepting: the primary sends each listening socket once, after boot (`lsock`). The worker accepts while
// it holds fewer than --worker-connections connections; at the cap it closes its copies of the listening
// sockets, so that the kernel gives new connections to the other workers, and asks for them again
// (`listen`) once below it. A stopping worker closes them at once: what is still queued in the kernel is
// taken by the others (the primary keeps the sockets open, so no queued connection is lost).
//
// Sync workers serve one request at a time, as Gunicorn's, and accept only while idle: from the connection they
// accept until its request is done they stop polling the listening sockets (without closing them: no round trip
// to the primary to resume), so the kernel gives new connections to idle workers. A connection that sends nothing
// does not keep them from accepting: once it has been silent for ADMIT_MS, the worker accepts again. A connection
// the primary passes while the worker is busy (`conn`, while a removed bind drains) waits for it to be idle.

import http from 'node:http';
import net, { type Socket } from 'node:net';
import os from 'node:os';
import type { Hooks, Settings } from '../config/types.js';
import { callHook, callHookSync } from '../hooks/call-hook.js';
import type { PrimaryToWorker, WorkerSpec, WorkerToPrimary } from '../ipc.js';
import { isMessage } from '../ipc.js';
import { compileAccessLog } from '../logging/access-log.js';
import type { Logger } from '../logging/logger.js';
import type { MetricFamily } from '../store/snapshot.js';
import { loadApp, type RequestListener } from './app-loader.js';
import { answerInternalError } from './internal-error.js';
import { closeIdleConnectionsSoon, httpServerOptions } from './http-options.js';
import type { Instrumentation, MakeInstrumentation } from './instrumentation.js';

export type WorkerKind = 'sync' | 'async';

type PollHandle = { readStart?(): number; readStop?(): number } | null | undefined;

/**
 * Stop polling a listening socket without closing it, so that accepting again costs no round trip to the primary.
 * libuv has no call for it, but a listening TCP handle that came over IPC is readable: readStart() marks it
 * reading without changing its poll callback (the one that accepts), and readStop() then stops the poll. False
 * where that fails (another libuv): the caller closes the socket instead.
 */
function pausePolling(server: net.Server): boolean {
  const h = (server as unknown as { _handle?: PollHandle })._handle;
  if (!h?.readStart || !h.readStop) return false;
  const started = h.readStart();
  // EALREADY: already marked reading by an earlier pause.
  return (started === 0 || started === -os.constants.errno.EALREADY) && h.readStop() === 0;
}

function resumePolling(server: net.Server): boolean {
  const h = (server as unknown as { _handle?: PollHandle })._handle;
  return h?.readStart?.() === 0;
}

/** The worker's responses carry what the request wrapper needs when they close (no closure per request). */
class WorkerResponse extends http.ServerResponse {
  startNs = 0n;
  startWall: Date | null = null;
  bytesAtStart = 0;
  failure: unknown = null;
}

/** Connections an async or thread worker accepts within BURST_MS before it lets the other workers take the rest. */
const BURST_ACCEPTS = 8;
const BURST_MS = 1;

/**
 * Sync workers: how long a connection the worker has started to read may stay silent before the worker accepts
 * again. A client sends its request head right after connecting, but a loaded client process may be scheduled
 * milliseconds later: with a window of one loop turn, one worker took every connection of a burst before the
 * others woke up and then served them one after the other. A silent connection costs the worker this once (it is
 * then read alongside, and closed at --timeout); Gunicorn's sync worker blocks on it until --timeout.
 */
const ADMIT_MS = 50;

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
  /** Called at fixed points (the metrics, with metrics on); attached with instrument() before init. */
  instrumentation: Instrumentation | null = null;

  protected readonly server: http.Server;
  protected readonly connections = new Set<Socket>();
  private readonly inflight = new Set<http.ServerResponse>();
  /** Our copies of the listening sockets, by the primary's index; empty while not accepting. */
  private acceptors: net.Server[] = [];
  /** Closed at --worker-connections: the sockets were (or will be) asked for again once below. */
  private atCap = false;
  /** Sync workers: the request being run, when it started (performance.now()), and those waiting for it. */
  private running: http.ServerResponse | null = null;
  private runningSince = 0;
  private readonly waiting: [http.IncomingMessage, http.ServerResponse][] = [];
  private readonly beatMs: number;
  /** Sync workers: accepted connections not read yet (the worker was busy), oldest first. */
  private readonly held: Socket[] = [];
  /** Sync workers: the connection being read that has not sent a request head yet (for up to ADMIT_MS). */
  private admitting: Socket | null = null;
  /** Async and thread workers: accepts since burstStart (performance.now()), and polling paused after a burst. */
  private burstAccepts = 0;
  private burstStart = 0;
  private burstPaused = false;
  private readonly endBurst = (): void => {
    this.burstPaused = false;
    this.resumeListening();
  };
  /** Our listening sockets are open but not polled (see pauseListening). */
  private listenPaused = false;
  /** Sync workers: when the connection being read (admitting) stops holding the worker if still silent. */
  private admitUntil = 0;
  /** One timer for every admission window (re-armed, never one per connection). */
  private admitTimer: NodeJS.Timeout | null = null;
  private readonly admitWindowOver = (): void => {
    this.admitTimer = null;
    if (this.admitting === null) return;
    const left = this.admitUntil - performance.now();
    if (left >= 1) {
      this.admitTimer = setTimeout(this.admitWindowOver, left).unref();
      return;
    }
    this.admitting = null;
    this.syncNext();
  };
  /** One listener for every connection's 'close' (no closure per connection). */
  private readonly onSocketClose: (this: Socket) => void;
  /** One listener for every response's 'close' (no closure per request). */
  private readonly onResponseClose: (this: WorkerResponse) => void;
  private readonly forceClose: boolean;
  /** Gunicorn's default pre_request logs "METHOD PATH" at debug level. */
  private readonly debugRequests: boolean;
  private readonly accessLine: ((info: Parameters<ReturnType<typeof compileAccessLog>>[0]) => string) | null;
  private drained = false;
  private exiting = false;
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
    this.beatMs = this.cfg.timeout > 0 ? Math.min(1000, Math.max(100, (this.cfg.timeout * 1000) / 4)) : 1000;
    this.server = http.createServer({ ...httpServerOptions(this.cfg), ServerResponse: WorkerResponse as typeof http.ServerResponse });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    // The server never listens (connections come from the acceptors below), but Node only tracks connections,
    // and so only closes idle keep-alive ones on closeIdleConnections() and enforces headersTimeout/
    // requestTimeout, once it has seen 'listening'. Without this an idle keep-alive client holds a stopping
    // worker until the graceful timeout.
    this.server.emit('listening');
    this.onSocketClose = Worker.closeListener(this);
    this.onResponseClose = Worker.responseCloseListener(this);
  }

  /** The 'close' listener of every response: `this` is the response. */
  private static responseCloseListener(worker: Worker): (this: WorkerResponse) => void {
    return function (this: WorkerResponse) {
      worker.responseClosed(this);
    };
  }

  /** The 'close' listener of every connection: `this` is the socket. */
  private static closeListener(worker: Worker): (this: Socket) => void {
    return function (this: Socket) {
      worker.onConnectionClosed(this);
    };
  }

  get kind(): WorkerKind {
    return (this.constructor as WorkerClass).kind;
  }

  /** Attach what is called at fixed points, and initialise it (the worker process does, before init). */
  async instrument(make: MakeInstrumentation): Promise<void> {
    this.instrumentation = make({
      pid: this.pid,
      ppid: this.ppid,
      seat: this.seat,
      cfg: this.cfg,
      log: this.log,
      hooks: this.hooks,
      requestsInFlight: () => this.requestsInFlight(),
      externalMetricFamilies: () => this.externalMetricFamilies(),
      send: (msg) => this.send(msg),
    });
    await this.instrumentation.init();
  }

  /** Gunicorn's init_process: post_fork, import the app, post_worker_init. Throws boot errors. */
  async init(): Promise<void> {
    await callHook(this.log, this.hooks, 'postFork', this.arbiter, this);
    this.app = await loadApp(this.cfg.app ?? '', this.cfg.chdir);
    await callHook(this.log, this.hooks, 'postWorkerInit', this);
  }

  /** Start serving: the primary answers `booted` with the listening sockets. */
  run(): void {
    this.installSignals();
    process.on('message', (msg: unknown, handle: unknown) => this.onMessage(msg, handle));
    process.on('disconnect', () => {
      this.log.info('Parent changed, shutting down');
      this.drained = true;
      this.beginShutdown('parent');
    });
    this.heartbeat = setInterval(() => this.beat(), this.beatMs);
    this.booted = true;
    this.send({ t: 'booted' });
    this.instrumentation?.run();
  }

  // ---- extension points for subclasses (no I/O allowed here) ----

  /** Called when a request starts, before the app runs. */
  protected requestStarted(_req: http.IncomingMessage): void {}

  /** The fixed point after each request (its response closed): the instrumentation, then requestFinished. */
  protected requestClosed(req: http.IncomingMessage, res: http.ServerResponse, durationNs: bigint, error: unknown): void {
    this.instrumentation?.requestFinished(req, res, durationNs, error);
    this.requestFinished(req, res, durationNs, error);
  }

  /** Called once per request when its response is closed, whatever the outcome. */
  protected requestFinished(
    _req: http.IncomingMessage,
    _res: http.ServerResponse,
    _durationNs: bigint,
    _error: unknown,
  ): void {}

  /** Requests being handled now (the metrics answer a scrape without collecting when busy). */
  protected requestsInFlight(): number {
    return this.inflight.size;
  }

  /**
   * Metric families held outside this thread's registries, as parts to merge (counters and histograms
   * summed): the thread worker's handler threads each have the app's prom-client registry. The metrics
   * merge them into their snapshots. Null: there are none.
   */
  protected externalMetricFamilies(): Promise<MetricFamily[][]> | null {
    return null;
  }

  // ---- connections and requests ----

  protected onMessage(msg: unknown, handle: unknown): void {
    if (!isMessage(msg)) return;
    const m = msg as PrimaryToWorker;
    if (m.t === 'lsock' && handle) this.addAcceptor(m.i, m.n, m.backlog, handle);
    else if (m.t === 'conn' && handle) this.acceptConnection(handle as Socket);
    else if (m.t === 'drained') {
      this.drained = true;
      this.maybeExit();
    } else if (m.t === 'reopen') this.log.reopen();
    // Other messages are the instrumentation's (the metrics answer `flush`).
    else this.instrumentation?.control(m);
  }

  /** Accept from one listening socket (our duplicate of the primary's descriptor). */
  private addAcceptor(i: number, n: number, backlog: number, handle: unknown): void {
    if (!this.alive || this.atCap) {
      (handle as { close(): void }).close();
      return;
    }
    if (this.acceptors.length !== n) {
      for (const a of this.acceptors) a?.close();
      this.acceptors = new Array<net.Server>(n);
    }
    this.acceptors[i]?.close();
    const server = net.createServer({ pauseOnConnect: this.acceptPaused, noDelay: true }, (socket) => this.acceptConnection(socket));
    server.on('error', (err) => this.log.error(`worker ${this.pid}: accepting failed`, err));
    // The backlog is passed on: listen(2) on a listening socket sets it again (Node's default would be 511).
    server.listen(handle as never, backlog);
    this.acceptors[i] = server;
    // A sync worker that is busy accepts again once it is idle (syncNext).
    if (this.listenPaused || (this.kind === 'sync' && (this.running !== null || this.admitting !== null))) {
      if (pausePolling(server)) this.listenPaused = true;
      else this.stopAccepting();
    }
  }

  /** Close our copies of the listening sockets: the kernel queues new connections for the other workers. */
  private stopAccepting(): void {
    for (const a of this.acceptors) a?.close();
    this.acceptors = [];
    this.listenPaused = false;
  }

  /** Ask the primary for the listening sockets again (after a pause at the cap). */
  private resumeAccepting(): void {
    if (!this.alive || this.atCap) return;
    this.send({ t: 'listen' });
  }

  /** Stop polling our listening sockets without closing them (pausePolling); if that fails, close them. */
  private pauseListening(): void {
    if (this.listenPaused) return;
    this.listenPaused = true;
    for (const a of this.acceptors) {
      if (a && !pausePolling(a)) return this.stopAccepting();
    }
  }

  /** Poll the listening sockets again after pauseListening (or ask for them, if they were closed). */
  private resumeListening(): void {
    if (!this.listenPaused) {
      if (this.acceptors.length === 0) this.resumeAccepting();
      return;
    }
    this.listenPaused = false;
    for (const a of this.acceptors) {
      if (a && !resumePolling(a)) {
        this.stopAccepting();
        return this.resumeAccepting();
      }
    }
  }

  private acceptConnection(socket: Socket): void {
    // libuv (>= 1.45, every supported Node line) accepts one connection per listening socket per event-loop
    // turn, but a worker that has the core to itself runs many turns before another worker is scheduled: a client
    // opening its keep-alive pool at once could land on one worker. So after BURST_ACCEPTS within BURST_MS an
    // async or thread worker stops polling until the next millisecond (no round trip: pauseListening), and the
    // other workers take the rest of the burst. Steady load (a few accepts per millisecond) never triggers it.
    if (this.kind !== 'sync' && this.cfg.workers > 1) this.countBurst();
    this.connections.add(socket);
    socket.on('close', this.onSocketClose);
    if (this.connections.size >= this.cfg.workerConnections && !this.atCap) {
      this.atCap = true;
      this.stopAccepting();
    }
    if (this.kind !== 'sync') return this.serveConnection(socket);
    this.held.push(socket);
    this.syncNext();
  }

  private countBurst(): void {
    const now = performance.now();
    if (now - this.burstStart > BURST_MS) {
      this.burstStart = now;
      this.burstAccepts = 0;
    }
    if (++this.burstAccepts >= BURST_ACCEPTS && !this.burstPaused) {
      this.burstPaused = true;
      this.pauseListening();
      setTimeout(this.endBurst, BURST_MS);
    }
  }

  /**
   * Sync workers: when idle (no request running, no connection being read that may still send one), read the
   * oldest held connection, or accept again when none is held.
   */
  private syncNext(): void {
    if (this.running !== null || this.admitting !== null) return;
    while (this.held.length > 0) {
      const socket = this.held.shift()!;
      if (socket.destroyed) continue;
      // Busy from here until this connection's request is done, or it sent no head for ADMIT_MS (or closed).
      this.admitting = socket;
      this.pauseListening();
      this.admitUntil = performance.now() + ADMIT_MS;
      this.admitTimer ??= setTimeout(this.admitWindowOver, ADMIT_MS).unref();
      this.serveConnection(socket);
      return;
    }
    this.resumeListening();
  }

  /**
   * Accept connections paused (nothing read until serveConnection): sync workers hold connections unread while
   * busy, the thread worker passes them to a thread unread. Async workers read at once, as a plain server does.
   */
  protected get acceptPaused(): boolean {
    return this.kind === 'sync';
  }

  /** Connections this process's own http.Server serves (closed when idle on a graceful stop). */
  protected idleCandidates(): Iterable<Socket> {
    return this.connections;
  }

  /** Serve an accepted connection (tracked in `connections`). The thread worker pipes it to a thread instead. */
  protected serveConnection(socket: Socket): void {
    this.server.emit('connection', socket);
    // Accepted paused (sync: held unread until the worker is idle): nothing has been read yet, start reading here.
    if (socket.isPaused()) socket.resume();
  }

  private onConnectionClosed(socket: Socket): void {
    this.connections.delete(socket);
    if (this.admitting === socket) {
      this.admitting = null;
      this.syncNext();
    }
    if (this.atCap && this.connections.size < this.cfg.workerConnections) {
      this.atCap = false;
      this.resumeAccepting();
    }
    this.maybeExit();
  }

  /**
   * A request head has arrived. Async: run it. Sync: run it if no other request is running, else queue it
   * (one request at a time; a connection that has sent nothing is never a request, so it never occupies
   * the worker).
   */
  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.kind !== 'sync') return this.handleRequest(req, res);
    res.shouldKeepAlive = false;
    if (this.running) this.waiting.push([req, res]);
    else this.handleRequest(req, res);
  }

  /** Sync workers: the running request ended; run the next one that is waiting, if its client is still there. */
  private requestDone(res: http.ServerResponse): void {
    if (this.running !== res) return;
    const ranMs = performance.now() - this.runningSince;
    this.running = null;
    // A request the primary may have seen as busy: tell it at once that it ended (not at the next beat).
    if (ranMs > this.beatMs / 2) this.beat();
    while (this.waiting.length > 0) {
      const [req, next] = this.waiting.shift()!;
      if (req.socket.destroyed) continue;
      this.handleRequest(req, next);
      return;
    }
    this.syncNext();
  }

  private handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.nr++;
    this.inflight.add(res);
    const sync = this.kind === 'sync';
    if (sync) {
      this.running = res;
      this.runningSince = performance.now();
      this.admitting = null;
    }
    if (this.forceClose || !this.alive) res.shouldKeepAlive = false;
    const r = res as WorkerResponse;
    r.startNs = process.hrtime.bigint();
    if (this.accessLine) {
      r.startWall = new Date();
      r.bytesAtStart = req.socket.bytesWritten;
    }
    res.on('close', this.onResponseClose);
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
      if (result && typeof result.then === 'function') result.then(undefined, (err: unknown) => this.requestFailed(r, err));
    } catch (err) {
      this.requestFailed(r, err);
    }
  }

  /** The handler threw or its promise rejected: 500 (if nothing was sent yet), logged, counted as a failure. */
  private requestFailed(res: WorkerResponse, err: unknown): void {
    if (res.failure === null) res.failure = err ?? new Error('request handler rejected');
    this.log.error(`Error handling request ${res.req.method} ${res.req.url}`, err);
    answerInternalError(res);
  }

  /** A response closed (sent, or its connection gone): the request is over. */
  private responseClosed(res: WorkerResponse): void {
    const req = res.req;
    this.inflight.delete(res);
    const durationNs = process.hrtime.bigint() - res.startNs;
    this.requestClosed(req, res, durationNs, res.failure);
    if (this.accessLine && res.startWall) this.writeAccessLog(req, res, res.startWall, durationNs, res.bytesAtStart);
    if (this.hooks.postRequest) callHookSync(this.log, this.hooks, 'postRequest', this, req, res);
    // A response committed as keep-alive before the stop is not followed by a close: the client may already be
    // sending its next request on it (answered with `Connection: close`); closeIdleConnectionsSoon ends it if not.
    if (this.kind === 'sync') this.requestDone(res);
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
    // The primary forwards its USR1 as a `reopen` message; this listener serves a USR1 sent to the worker itself
    // (where Node has --disable-sigusr1, the worker runs with it and the signal never arrives).
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
    const busyMs = this.kind === 'sync' ? (this.running ? Math.max(1, performance.now() - this.runningSince) : 0) : undefined;
    this.send({ t: 'hb', ...this.instrumentation?.heartbeat(), ...(busyMs === undefined ? {} : { busyMs }) });
  }

  /** Graceful stop (TERM, max-requests, parent gone): finish in-flight requests, then exit 0. */
  beginShutdown(reason: 'term' | 'max-requests' | 'parent'): void {
    if (!this.alive) return;
    this.alive = false;
    this.stopAccepting();
    this.send({ t: 'quit', reason });
    for (const res of this.inflight) {
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
    closeIdleConnectionsSoon(() => this.idleCandidates());
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
    this.stopAccepting();
    await callHook(this.log, this.hooks, 'workerInt', this);
    await this.exit(0);
  }

  /** ABRT: the primary timed this worker out. */
  private async abort(): Promise<void> {
    this.alive = false;
    this.stopAccepting();
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
      await this.instrumentation?.beforeExit();
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
