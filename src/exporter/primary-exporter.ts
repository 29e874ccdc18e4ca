// The exporter half of the primary: prepares the store, keeps the master metrics, folds dead workers,
// samples worker processes, and runs the metrics server. It reaches the arbiter only through ExporterHost; the
// arbiter starts its server after whenReady and stops it after onExit.

import type { Settings } from '../config/types.js';
import type { Logger } from '../logging/logger.js';
import { HANDLED_SIGNALS, signalName } from '../arbiter/signals.js';
import { isPromforkError } from '../errors.js';
import { MasterMetrics, type RestartReason } from '../metrics/master-metrics.js';
import { ProcessSampler } from '../metrics/process-sampler.js';
import { prepareStore } from '../store/prepare-store.js';
import type { SnapshotStore } from '../store/store.js';
import { Collector, type CollectorHost } from './collector.js';
import { MetricsServer, metricsServerOptions } from './metrics-server.js';

const SAMPLE_MS = 1000;
const MASTER_SNAPSHOT_TICKS = 5;

/** What the exporter needs of the arbiter (src/arbiter/arbiter.ts makes one of itself). */
export interface ExporterHost extends CollectorHost {
  readonly pid: number;
  /** The settings now (a reload may change them). */
  settings(): Settings;
  log(): Logger;
  /** The server is stopping: workers that exit are not restarts. */
  isStopping(): boolean;
  on<E extends keyof ExporterEvents>(event: E, listener: (...args: ExporterEvents[E]) => void): void;
}

/** A worker as the exporter sees it when it exits. */
export interface ExitedWorker {
  pid: number;
  /** Why the arbiter stopped it, if it did. */
  stopReason: RestartReason | 'scale-down' | null;
}

export interface ExporterEvents {
  /** The primary handled a signal. */
  signal: [name: string];
  /** Workers reported this many more failed snapshot writes. */
  'store-errors': [n: number];
  /** A worker persisted snapshot `seq` on its own schedule. */
  pushed: [pid: number, seq: number];
  exit: [worker: ExitedWorker, code: number | null, signal: NodeJS.Signals | null];
}

export class PrimaryExporter {
  master: MasterMetrics | null = null;
  store: SnapshotStore | null = null;
  collector: Collector | null = null;
  server: MetricsServer | null = null;
  private readonly sampler = new ProcessSampler();
  private sampleTimer: NodeJS.Timeout | null = null;
  private serverStarting: Promise<void> | null = null;
  private masterSeq = 0;
  private stopped = false;
  private ticks = 0;

  constructor(private readonly host: ExporterHost) {}

  get isSetUp(): boolean {
    return this.collector !== null;
  }

  /** Store and master metrics; idempotent. Throws a PromforkError when the store directory is unsafe. */
  setup(): void {
    if (this.collector) return;
    const { host } = this;
    const cfg = host.settings();
    this.master = new MasterMetrics(cfg.metricsNamespace, HANDLED_SIGNALS.map(signalName));
    this.store = prepareStore(cfg, host.pid, host.log());
    this.master.setStoreUp(this.store.kind, true);
    this.collector = new Collector(host, this.store, this.master, this.sampler, {
      scrapeTimeoutMs: cfg.scrapeTimeout * 1000,
      log: host.log(),
    });
    host.on('signal', (name) => this.master?.countSignal(name));
    host.on('store-errors', (n) => this.master?.countStoreErrors('worker', n));
    host.on('pushed', (pid, seq) => this.collector?.pushed(pid, seq));
    host.on('exit', (w, code, signal) => this.onWorkerExit(w, code, signal));
    this.sampleTimer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.sampleTimer.unref();
  }

  /** Start the metrics server; idempotent. A failure is logged: the app keeps serving. */
  startServer(): Promise<void> {
    this.serverStarting ??= this.doStartServer();
    return this.serverStarting;
  }

  private async doStartServer(): Promise<void> {
    this.setup();
    const server = new MetricsServer(metricsServerOptions(this.host.settings(), this.collector!, this.host.log()));
    // Kept before start() resolves, so that a stop during the port retries can cancel them.
    this.server = server;
    try {
      await server.start();
    } catch (err) {
      this.server = null;
      this.host.log().error(
        `Metrics server not started, the app keeps serving: ${isPromforkError(err) ? err.toLine() : String(err)}`,
      );
    }
  }

  /** Stop the server and release the store; once (the arbiter calls it at exit, the default onExit hook too). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    await this.server?.close();
    // A shared Redis outlives the server: remove this run, as its /metrics is gone too (the directory's
    // files of a dead primary are ignored by the sidecar and cleared by the next start).
    if (this.store?.kind === 'redis') await this.store.clear().catch(() => {});
    await this.store?.close().catch(() => {});
    this.server = null;
    this.serverStarting = null;
  }

  private async sample(): Promise<void> {
    const pids = this.host.workers().map((w) => w.pid);
    await this.sampler.sample(pids);
    // The primary's snapshot is for the sidecar: every 5 s is fresh enough and keeps Redis traffic flat.
    if (this.ticks++ % MASTER_SNAPSHOT_TICKS === 0) await this.writeMasterSnapshot(pids);
  }

  /**
   * The primary's own metrics go to the store too (under its own pid), so that the sidecar exporter,
   * which has no primary to ask, serves them as well. The primary's collector never reads this one.
   */
  private async writeMasterSnapshot(livePids: number[]): Promise<void> {
    if (!this.collector || !this.store) return;
    try {
      const metrics = await this.collector.masterFamilies();
      const pid = this.host.pid;
      await this.store.writeSnapshot({ version: 1, pid, seat: 0, ppid: pid, seq: ++this.masterSeq, takenAt: Date.now(), metrics });
      // Workers refresh their own key on every write; this keeps a blocked worker's key alive too.
      await this.store.refresh?.([pid, ...livePids]);
      this.master?.setStoreUp(this.store.kind, true);
    } catch (err) {
      this.master?.countStoreErrors('primary');
      this.master?.setStoreUp(this.store.kind, false);
      if (this.masterSeq % 60 === 1) this.host.log().warning(`metrics: cannot write the primary's snapshot: ${(err as Error).message}`);
    }
  }

  private onWorkerExit(w: ExitedWorker, code: number | null, signal: NodeJS.Signals | null): void {
    void this.collector?.fold(w.pid);
    if (this.host.isStopping() || w.stopReason === 'scale-down') return;
    const reason: RestartReason =
      w.stopReason && w.stopReason !== 'exit' ? w.stopReason : signal ? 'killed' : code !== 0 ? 'crash' : 'exit';
    this.master?.countRestart(reason);
  }
}
