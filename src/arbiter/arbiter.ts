// The primary process (Gunicorn's Arbiter): owns the listeners, forks and supervises workers,
// handles signals, kills silent workers, keeps the count at `numWorkers`, runs the server hooks.

import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../config/index.js';
import type { Config, Hooks, Settings } from '../config/types.js';
import { EXIT_APP_LOAD, EXIT_WORKER_BOOT, isPromforkError } from '../errors.js';
import { callHook } from '../hooks/call-hook.js';
import { isMessage, type WorkerSpec, type WorkerToPrimary } from '../ipc.js';
import { Logger } from '../logging/logger.js';
import { VERSION } from '../version.js';
import { resolveWorkerClass, usingWorkerLine, type ResolvedWorkerClass } from '../workers/worker-classes.js';
import { Dispatcher, releaseUnacknowledgedSockets } from './dispatcher.js';
import { PrimaryExporter, type ExporterHost } from '../exporter/primary-exporter.js';
import { withDefaultHooks } from '../hooks/defaults.js';
import { bindAll, closeAll, closeDrained, listenHandles, startDraining, type Listener } from './listener.js';
import { Pidfile } from './pidfile.js';
import { WorkerRecord, type FlushAnswer } from './worker-record.js';
import { HANDLED_SIGNALS, signalName } from './signals.js';
import { workerExecArgv } from '../inspector-guard.js';

const TICK_MS = 1000;

const WORKER_ENTRY = fileURLToPath(
  new URL(`../workers/entry.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url),
);

export interface ArbiterEvents {
  signal: [name: string];
  spawn: [worker: WorkerRecord];
  /** A worker exited; `replaced` is false only while the server is stopping. */
  exit: [worker: WorkerRecord, code: number | null, signal: NodeJS.Signals | null];
  /** Workers reported this many more failed snapshot writes. */
  'store-errors': [n: number];
  /** A worker persisted snapshot `seq` on its own schedule. */
  pushed: [worker: WorkerRecord, seq: number];
}

export class Arbiter {
  readonly pid = process.pid;
  /** Lifecycle events for observers (the metrics layer): signal, spawn, exit. */
  readonly events = new EventEmitter<ArbiterEvents>();
  config: Config;
  cfg: Settings;
  hooks: Hooks;
  log: Logger;
  workerClass: ResolvedWorkerClass;
  /** Live workers by pid (plus the one being forked, under pid 0, while preFork runs). */
  readonly workers = new Map<number, WorkerRecord>();
  listeners: Listener[] = [];
  /** Bumped when a reload replaces the listeners; each worker records the generation it was given. */
  private listenerGen = 0;
  /** Listeners a reload replaced, drained by the primary until no worker holding them is left. */
  private stale: { listeners: Listener[]; gen: number }[] = [];
  /** The exporter half (null with --no-metrics). */
  readonly exporter: PrimaryExporter | null;
  private _numWorkers: number | null = null;
  private workerAge = 0;
  private flushIds = 0;
  private pidfile: Pidfile | null = null;
  private readonly dispatcher: Dispatcher;
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly signalQueue: NodeJS.Signals[] = [];
  private handlingSignals = false;
  private stopping = false;
  private halting = false;
  private stopDeadline = 0;
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();
  private readonly reportedNotices = new Set<string>();

  constructor(config: Config, workerClass: ResolvedWorkerClass, log?: Logger) {
    this.config = config;
    this.cfg = config.settings;
    this.hooks = withDefaultHooks(config.hooks, this.cfg.metrics);
    this.workerClass = workerClass;
    this.log = log ?? new Logger(loggerOptions(this.cfg));
    this.exporter = this.cfg.metrics ? new PrimaryExporter(this.exporterHost()) : null;
    // Connections the primary takes from replaced listeners go to workers that accept from the current ones.
    this.dispatcher = new Dispatcher(() => [...this.workers.values()].filter((w) => w.listenerGen === this.listenerGen));
  }

  get numWorkers(): number {
    return this._numWorkers ?? 0;
  }

  /** Every assignment fires nworkersChanged, as in Gunicorn (also when the value is unchanged on HUP). */
  async setNumWorkers(value: number): Promise<void> {
    const old = this._numWorkers;
    this._numWorkers = value;
    await callHook(this.log, this.hooks, 'nworkersChanged', this, value, old);
  }

  /** Start and serve until stopped; resolves never (the process exits through halt()). */
  async run(): Promise<void> {
    await this.start();
    this.manageWorkers();
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
  }

  private async start(): Promise<void> {
    this.log.info(`Starting promfork ${VERSION}`);
    this.reportNotices();
    await this.setNumWorkers(this.cfg.workers);
    if (this.cfg.pidfile) {
      this.pidfile = new Pidfile(this.cfg.pidfile);
      this.pidfile.create(this.pid);
    }
    try {
      // An unsafe store directory stops the start with a clear error (the default onStarting hook is then a no-op).
      this.exporter?.setup();
      await callHook(this.log, this.hooks, 'onStarting', this);
      this.installSignals();
      this.listeners = await this.bind(this.cfg.bind);
    } catch (err) {
      this.pidfile?.unlink(this.pid);
      this.removeSignals();
      throw err;
    }
    process.title = `${this.cfg.procName}: master`;
    for (const l of this.listeners) this.log.info(`Listening at: ${l.url} (${this.pid})`);
    this.log.info(usingWorkerLine(this.workerClass));
    await callHook(this.log, this.hooks, 'whenReady', this);
    // The exporter starts at this fixed point, whatever the hooks did.
    await this.exporter?.startServer();
  }

  /** The config file's ignored keys, each reported once in the primary's life (a reload repeats none). */
  private reportNotices(): void {
    for (const line of this.config.notices ?? []) {
      if (this.reportedNotices.has(line)) continue;
      this.reportedNotices.add(line);
      this.log.warning(line);
    }
  }

  private bind(binds: string[]): Promise<Listener[]> {
    return bindAll(binds, {
      backlog: this.cfg.backlog,
      onRetry: (bind, err) => this.log.error(`Connection in use: ${bind} (${err.code}); retrying in 1 second`),
    });
  }

  // ---- the loop: murder silent workers, keep the count ----

  private tick(): void {
    if (this.stopping) return;
    this.murderWorkers();
    this.manageWorkers();
    this.retireReplaced();
  }

  private murderWorkers(): void {
    const timeoutMs = this.cfg.timeout * 1000;
    if (timeoutMs <= 0) return;
    const now = performance.now();
    for (const w of this.workers.values()) {
      if (!w.booted || w.pid === 0) continue; // as Gunicorn: a worker that hangs while booting is not timed out
      const silent = now - w.lastBeat > timeoutMs;
      const stuck = w.kind === 'sync' && w.busy && now - w.busySince > timeoutMs;
      if (!silent && !stuck) continue;
      if (!w.aborted) {
        this.log.critical(`WORKER TIMEOUT (pid:${w.pid})`);
        w.aborted = true;
        w.setState('aborting');
        w.stopReason ??= 'timeout';
        w.kill('SIGABRT');
      } else {
        w.kill('SIGKILL');
      }
    }
  }

  /** Spawn missing workers; stop the oldest while there are too many. */
  manageWorkers(): void {
    if (this.stopping) return;
    const active = [...this.workers.values()].filter((w) => w.active);
    for (let i = active.length; i < this.numWorkers; i++) this.spawnWorker();
    if (active.length > this.numWorkers) {
      active.sort((a, b) => a.age - b.age);
      for (const w of active.slice(0, active.length - this.numWorkers)) this.stopWorker(w, 'SIGTERM', 'scale-down');
    }
  }

  /** Stop reload-retired workers whose seat has a booted successor, or all once no successor is booting. */
  private retireReplaced(): void {
    const retiring = [...this.workers.values()].filter((w) => w.retiring && !w.quitting);
    if (retiring.length === 0) return;
    const active = [...this.workers.values()].filter((w) => w.active);
    const stillBooting = active.some((w) => !w.booted);
    for (const old of retiring) {
      const successorBooted = active.some((w) => w.booted && w.seat === old.seat);
      if (successorBooted || !stillBooting) this.stopWorker(old, 'SIGTERM', 'reload');
    }
  }

  private lowestFreeSeat(): number {
    const taken = new Set([...this.workers.values()].filter((w) => w.active).map((w) => w.seat));
    let seat = 0;
    while (taken.has(seat)) seat++;
    return seat;
  }

  private spawnWorker(): void {
    const age = ++this.workerAge;
    const jitter = this.cfg.maxRequestsJitter > 0 ? Math.floor(Math.random() * (this.cfg.maxRequestsJitter + 1)) : 0;
    const maxRequests = this.cfg.maxRequests > 0 ? this.cfg.maxRequests + jitter : 0;
    const record = new WorkerRecord(age, this.lowestFreeSeat(), this.workerClass.cls.kind, maxRequests);
    // Held under pid 0 while preFork runs, so that the seat counts as taken.
    this.workers.set(0 - age, record);
    void callHook(this.log, this.hooks, 'preFork', this, record).then(() => {
      this.workers.delete(0 - age);
      if (this.stopping) return;
      this.forkWorker(record);
    });
  }

  private forkWorker(record: WorkerRecord): void {
    const child = fork(WORKER_ENTRY, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // No inspector flag of ours reaches a worker, and SIGUSR1 cannot open one during its start-up.
      execArgv: workerExecArgv(),
    });
    record.child = child;
    record.pid = child.pid ?? 0;
    if (!record.pid) {
      this.log.error('fork failed: no pid');
      return;
    }
    this.workers.set(record.pid, record);
    const spec: WorkerSpec = {
      settings: this.cfg,
      configFile: this.config.configFile,
      age: record.age,
      seat: record.seat,
      maxRequests: record.maxRequests,
      ppid: this.pid,
      workerClass: this.workerClass.id,
    };
    child.send({ t: 'spec', spec });
    child.on('message', (msg: unknown) => this.onWorkerMessage(record, msg));
    child.on('error', (err) => this.log.error(`worker ${record.pid}: ${err.message}`));
    child.once('exit', (code, signal) => this.onWorkerExit(record, code, signal));
    this.events.emit('spawn', record);
  }

  private onWorkerMessage(w: WorkerRecord, msg: unknown): void {
    if (!isMessage(msg)) return;
    w.lastBeat = performance.now();
    const m = msg as WorkerToPrimary;
    switch (m.t) {
      case 'hb':
        this.noteStoreErrors(w, m.storeErrors);
        if (m.busyMs !== undefined) {
          w.busy = m.busyMs > 0;
          w.busySince = w.lastBeat - m.busyMs;
        }
        return;
      case 'flushed':
        this.noteStoreErrors(w, m.storeErrors);
        w.pendingFlushes.get(m.id)?.done(m.ok ? { seq: m.seq, current: m.current } : null);
        return;
      case 'pushed':
        this.events.emit('pushed', w, m.seq);
        return;
      case 'booted':
        w.booted = true;
        w.setState('running');
        this.log.debug(`Worker booted (pid:${w.pid}, seat:${w.seat}, age:${w.age})`);
        this.sendListeners(w);
        this.retireReplaced();
        this.dispatcher.pump();
        return;
      case 'listen':
        this.sendListeners(w);
        return;
      case 'quit':
        w.quitting = true;
        w.setState('quitting');
        w.stopReason ??= m.reason;
        w.child?.send({ t: 'drained' }, undefined, undefined, () => {});
        this.manageWorkers();
        return;
    }
  }

  /** Give a worker the listening sockets to accept from (one message per socket, the handle attached). */
  private sendListeners(w: WorkerRecord): void {
    const child = w.child;
    if (!child?.connected || w.quitting) return;
    w.listenerGen = this.listenerGen;
    const n = this.listeners.length;
    this.listeners.forEach((l, i) => {
      child.send({ t: 'lsock', i, n, backlog: this.cfg.backlog }, l.handle as never, undefined, () => {});
    });
  }

  private isListenerHandle(handle: unknown): boolean {
    if (this.listeners.some((l) => l.handle === handle)) return true;
    return this.stale.some((s) => s.listeners.some((l) => l.handle === handle));
  }

  /** Close the replaced listeners that no live worker accepts from any more (after draining their queue). */
  private closeStaleListeners(): void {
    const holders = (gen: number) => [...this.workers.values()].some((w) => w.pid > 0 && w.listenerGen >= 0 && w.listenerGen <= gen);
    for (const entry of [...this.stale]) {
      if (holders(entry.gen)) continue;
      this.stale.splice(this.stale.indexOf(entry), 1);
      for (const l of entry.listeners) void closeDrained(l);
    }
  }

  private noteStoreErrors(w: WorkerRecord, reported: number | undefined): void {
    if (reported === undefined || reported <= w.storeErrors) return;
    this.events.emit('store-errors', reported - w.storeErrors);
    w.storeErrors = reported;
  }

  /**
   * Ask a worker for its current metrics snapshot. Resolves with its answer (the seq now in the store, and whether
   * it holds everything counted so far), or null if it did not answer within `timeoutMs`. A worker that left an
   * earlier request unanswered for longer than `timeoutMs` and sent nothing since is not asked again, and null
   * comes at once: a blocked worker delays one scrape by `timeoutMs` at most, and the next ones not at all.
   */
  requestFlush(w: WorkerRecord, timeoutMs: number): Promise<FlushAnswer | null> {
    if (!w.child?.connected) return Promise.resolve(null);
    const now = performance.now();
    for (const pending of w.pendingFlushes.values()) {
      // Unanswered past the deadline, and not a word from the worker since (its heartbeat timer fires as soon as
      // its event loop is free again): it is blocked.
      if (now - pending.sentAt > timeoutMs && w.lastBeat < pending.sentAt) return Promise.resolve(null);
    }
    const id = ++this.flushIds;
    return new Promise<FlushAnswer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      const done = (answer: FlushAnswer | null) => {
        clearTimeout(timer);
        w.pendingFlushes.delete(id);
        resolve(answer);
      };
      w.pendingFlushes.set(id, { sentAt: now, done });
      w.child!.send({ t: 'flush', id, until: Date.now() + timeoutMs }, undefined, undefined, (err) => {
        if (err) done(null);
      });
    });
  }

  /** What the exporter sees of the arbiter. */
  private exporterHost(): ExporterHost {
    return {
      pid: this.pid,
      settings: () => this.cfg,
      log: () => this.log,
      isStopping: () => this.stopping,
      workers: () =>
        [...this.workers.values()]
          .filter((w) => w.pid > 0)
          .map((w) => ({ pid: w.pid, seat: w.seat, age: w.age, state: w.state, stateSince: w.stateSince, spawnedAt: w.spawnedAt, booted: w.booted })),
      requestFlush: (pid, timeoutMs) => {
        const w = this.workers.get(pid);
        return w ? this.requestFlush(w, timeoutMs) : Promise.resolve(null);
      },
      on: (event, listener) => {
        // The exporter's events carry what it needs of a worker record (its pid, why it was stopped).
        const l = listener as (...args: unknown[]) => void;
        if (event === 'pushed') this.events.on('pushed', (w, seq) => l(w.pid, seq));
        else if (event === 'exit') this.events.on('exit', (w, code, signal) => l(w, code, signal));
        else if (event === 'signal') this.events.on('signal', (name) => l(name));
        else this.events.on('store-errors', (n) => l(n));
      },
    };
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** TERM or QUIT one worker: it gets no new connections from now on. */
  private stopWorker(w: WorkerRecord, signal: NodeJS.Signals, reason: 'scale-down' | 'reload' | 'exit' = 'exit'): void {
    w.quitting = true;
    w.setState('quitting');
    w.stopReason ??= reason;
    w.kill(signal);
    // Everything handed to it before this message is already in its pipe; nothing follows.
    w.child?.send({ t: 'drained' }, undefined, undefined, () => {});
  }

  private onWorkerExit(w: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(w.pid);
    for (const pending of [...w.pendingFlushes.values()]) pending.done(null);
    const released = releaseUnacknowledgedSockets(w.child, (h) => this.isListenerHandle(h));
    if (released > 0) this.log.warning(`${released} connection(s) sent to worker ${w.pid} were lost with it`);
    this.logWorkerExit(w, code, signal);
    this.events.emit('exit', w, code, signal);
    // Boot errors (3, 4) stop the server only from a worker that never booted: a booted worker's app that calls
    // process.exit(3) is a crash like any other, and its worker is replaced.
    if (!this.stopping && !w.booted && code === EXIT_WORKER_BOOT) {
      void this.halt('Worker failed to boot.', EXIT_WORKER_BOOT);
      return;
    }
    if (!this.stopping && !w.booted && code === EXIT_APP_LOAD) {
      void this.halt('App failed to load.', EXIT_APP_LOAD);
      return;
    }
    void callHook(this.log, this.hooks, 'childExit', this, w);
    if (!this.stopping) {
      this.manageWorkers();
      this.closeStaleListeners();
      this.dispatcher.pump();
    }
  }

  /** Why a worker ended, telling what the primary did (timeout, stop deadline) from a crash or the OOM killer. */
  private logWorkerExit(w: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    const who = `Worker (pid:${w.pid})`;
    if (signal === 'SIGKILL') {
      if (w.aborted) this.log.error(`${who} was sent SIGKILL after its WORKER TIMEOUT (--timeout ${this.cfg.timeout})`);
      else if (w.sent.has('SIGKILL')) this.log.warning(`${who} was sent SIGKILL: it did not stop within --graceful-timeout ${this.cfg.gracefulTimeout}`);
      else this.log.error(`${who} was sent SIGKILL! Perhaps out of memory?`); // not by the primary: the OOM killer?
    } else if (signal === 'SIGABRT') {
      if (w.aborted) this.log.error(`${who} ended on SIGABRT after its WORKER TIMEOUT (--timeout ${this.cfg.timeout})`);
      else this.log.error(`${who} crashed (SIGABRT): a fatal error in Node, e.g. JavaScript heap out of memory (see the worker's last lines)`);
    } else if (signal === 'SIGTERM') this.log.info(`${who} was sent SIGTERM!`);
    else if (signal) this.log.warning(`${who} was sent ${signal}!`);
    else if (code !== 0) this.log.error(`${who} exited with code ${code}.`);
  }

  // ---- signals ----

  private installSignals(): void {
    for (const sig of HANDLED_SIGNALS) {
      const handler = () => this.onSignal(sig);
      this.signalHandlers.set(sig, handler);
      process.on(sig, handler);
    }
  }

  private removeSignals(): void {
    for (const [sig, handler] of this.signalHandlers) process.off(sig, handler);
    this.signalHandlers.clear();
  }

  private onSignal(sig: NodeJS.Signals): void {
    const name = signalName(sig);
    this.events.emit('signal', name);
    // INT or QUIT during a graceful stop escalates at once, as Gunicorn 24+ does.
    if (this.stopping && (sig === 'SIGINT' || sig === 'SIGQUIT')) {
      this.log.info(`Handling signal: ${name} (escalating the stop)`);
      for (const w of this.workers.values()) w.kill('SIGQUIT');
      this.stopDeadline = Math.min(this.stopDeadline, performance.now() + 2000);
      return;
    }
    this.signalQueue.push(sig);
    void this.handleSignals();
  }

  private async handleSignals(): Promise<void> {
    if (this.handlingSignals) return;
    this.handlingSignals = true;
    try {
      while (this.signalQueue.length > 0) {
        const sig = this.signalQueue.shift()!;
        this.log.info(`Handling signal: ${sig.slice(3).toLowerCase()}`);
        await this.handleSignal(sig);
      }
    } finally {
      this.handlingSignals = false;
    }
  }

  private async handleSignal(sig: NodeJS.Signals): Promise<void> {
    switch (sig) {
      case 'SIGTERM':
        return this.halt();
      case 'SIGINT':
      case 'SIGQUIT':
        await this.stop(false);
        return this.halt();
      case 'SIGHUP':
        return this.reload();
      case 'SIGTTIN':
        await this.setNumWorkers(this.numWorkers + 1);
        this.manageWorkers();
        return;
      case 'SIGTTOU':
        if (this.numWorkers <= 1) return;
        await this.setNumWorkers(this.numWorkers - 1);
        this.manageWorkers();
        return;
      case 'SIGUSR1':
        this.log.reopen();
        // Forwarded over IPC, never as a signal: a worker still starting would let Node open the inspector, and a
        // worker started with --disable-sigusr1 never sees the signal. Booted workers listen for this message.
        for (const w of this.workers.values()) if (w.booted) w.child?.send({ t: 'reopen' }, undefined, undefined, () => {});
        return;
      case 'SIGUSR2':
        // Gunicorn's USR2 starts a new primary from the new binary beside this one. promfork loads new code on HUP
        // (every worker replaced, no request dropped), so it counts the signal, says so, and serves on.
        this.log.warning('USR2 (binary upgrade) is not supported: send HUP to load new code; still serving');
        return;
      case 'SIGWINCH':
        this.log.debug('SIGWINCH ignored: not daemonized');
        return;
    }
  }

  // ---- reload (HUP) ----

  /** Re-read the configuration and replace every worker, dropping no request. */
  async reload(): Promise<void> {
    this.log.info('Hang up: Master');
    let next: Config;
    let workerClass: ResolvedWorkerClass;
    try {
      next = (await resolveConfig(this.config.argv)).config;
      workerClass = await resolveWorkerClass(next.settings.workerClass, next.settings.chdir, next.settings.metrics);
    } catch (err) {
      // Gunicorn exits here; a broken config file must not take a running server down, so we keep the old one.
      const line = isPromforkError(err) ? err.toLine() : String(err);
      this.log.error(`Reload failed, still running the previous configuration: ${line}`);
      return;
    }
    const old = this.cfg;
    this.config = next;
    this.reportNotices();
    this.cfg = next.settings;
    this.hooks = withDefaultHooks(next.hooks, this.cfg.metrics);
    this.workerClass = workerClass;
    try {
      this.log.setup(loggerOptions(this.cfg));
    } catch (err) {
      this.log.error(`Reload: keeping the previous log files: ${isPromforkError(err) ? err.toLine() : String(err)}`);
    }
    await this.setNumWorkers(this.cfg.workers);
    if (JSON.stringify(old.bind) !== JSON.stringify(this.cfg.bind) || old.backlog !== this.cfg.backlog) {
      try {
        await this.rebind(old.backlog);
      } catch (err) {
        this.log.error(`Reload: keeping the previous listeners: ${isPromforkError(err) ? err.toLine() : String(err)}`);
        this.cfg = { ...this.cfg, bind: old.bind, backlog: old.backlog };
      }
    }
    await callHook(this.log, this.hooks, 'onReload', this);
    this.updatePidfile(old.pidfile);
    process.title = `${this.cfg.procName}: master`;
    for (const w of this.workers.values()) if (!w.quitting) w.retiring = true;
    this.manageWorkers();
  }

  /**
   * Apply a changed --bind or --backlog. Binds that stay keep their socket (a new backlog is set on it with
   * listen(2)); new ones are bound; removed ones go on serving (the primary drains them, handing their
   * connections to workers with the current sockets) until no worker holding them is left, then are closed.
   */
  private async rebind(oldBacklog: number): Promise<void> {
    const current = new Map(this.listeners.map((l) => [l.bind, l]));
    const added = await this.bind(this.cfg.bind.filter((b) => !current.has(b)));
    const kept = this.listeners.filter((l) => this.cfg.bind.includes(l.bind));
    if (kept.length > 0 && oldBacklog !== this.cfg.backlog) {
      const failed = listenHandles(kept.map((l) => l.handle), this.cfg.backlog);
      if (failed) this.log.error(`Reload: --backlog ${this.cfg.backlog} not applied to the kept sockets: ${failed}`);
    }
    const byBind = new Map([...kept, ...added].map((l) => [l.bind, l]));
    const stale = this.listeners.filter((l) => !byBind.has(l.bind));
    this.stale.push({ listeners: stale, gen: this.listenerGen++ });
    for (const l of stale) startDraining(l, oldBacklog, (socket) => this.dispatcher.add(socket));
    this.listeners = this.cfg.bind.map((b) => byBind.get(b)!);
    for (const l of added) this.log.info(`Listening at: ${l.url} (${this.pid})`);
  }

  private updatePidfile(oldPath: string | null): void {
    if (oldPath !== this.cfg.pidfile) {
      this.pidfile?.unlink(this.pid);
      this.pidfile = this.cfg.pidfile ? new Pidfile(this.cfg.pidfile) : null;
    }
    try {
      this.pidfile?.write(this.pid);
    } catch (err) {
      this.log.error(isPromforkError(err) ? err.toLine() : String(err));
    }
  }

  // ---- stop and halt ----

  /** Close the listeners, signal every worker (TERM graceful, QUIT fast), SIGKILL what is left at the deadline. */
  async stop(graceful: boolean): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      if (this.tickTimer) clearInterval(this.tickTimer);
      closeAll(this.listeners);
      for (const s of this.stale.splice(0)) closeAll(s.listeners);
      this.dispatcher.closeAll();
    }
    const signal: NodeJS.Signals = graceful ? 'SIGTERM' : 'SIGQUIT';
    for (const w of this.workers.values()) this.stopWorker(w, signal);
    this.stopDeadline = performance.now() + this.cfg.gracefulTimeout * 1000;
    while (this.liveWorkers() > 0 && performance.now() < this.stopDeadline) await delay(50);
    if (this.liveWorkers() > 0) {
      for (const w of this.workers.values()) w.kill('SIGKILL');
      const killDeadline = performance.now() + 5000;
      while (this.liveWorkers() > 0 && performance.now() < killDeadline) await delay(20);
    }
  }

  private liveWorkers(): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.pid > 0) n++;
    return n;
  }

  /** Stop (gracefully unless already stopped), remove the pidfile, run onExit, exit with `status`. */
  async halt(reason?: string, status = 0): Promise<void> {
    if (this.halting) return;
    this.halting = true;
    await this.stop(true);
    this.log.info('Shutting down: Master');
    if (reason) this.log.info(`Reason: ${reason}`);
    this.pidfile?.unlink(this.pid);
    await callHook(this.log, this.hooks, 'onExit', this);
    await this.exporter?.stop(); // at this fixed point, whatever the hooks did (once: a hook may have stopped it)
    this.removeSignals();
    await this.log.close();
    process.exit(status);
  }
}

export function loggerOptions(s: Settings): { errorlog: string; loglevel: Settings['loglevel']; accesslog: string | null } {
  return { errorlog: s.errorlog, loglevel: s.loglevel, accesslog: null };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
