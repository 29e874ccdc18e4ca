// The exporter half of the primary: prepares the store, keeps the master metrics, folds dead workers,
// samples worker processes, and runs the metrics server. Driven by the arbiter's events and by the
// default hooks (defaultOnStarting / defaultWhenReady / defaultOnExit).

import type { Arbiter } from '../arbiter/arbiter.js';
import type { WorkerRecord } from '../arbiter/worker-record.js';
import { HANDLED_SIGNALS, signalName } from '../arbiter/signals.js';
import { isPromforkError } from '../errors.js';
import { MasterMetrics, type RestartReason } from '../metrics/master-metrics.js';
import { ProcessSampler } from '../metrics/process-sampler.js';
import { prepareStore } from '../store/prepare-store.js';
import type { SnapshotStore } from '../store/store.js';
import { Collector } from './collector.js';
import { MetricsServer, metricsServerOptions } from './metrics-server.js';

const SAMPLE_MS = 1000;
const MASTER_SNAPSHOT_TICKS = 5;

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

  constructor(private readonly arbiter: Arbiter) {}

  get isSetUp(): boolean {
    return this.collector !== null;
  }

  /** Store and master metrics; idempotent. Throws a PromforkError when the store directory is unsafe. */
  setup(): void {
    if (this.collector) return;
    const { arbiter } = this;
    const cfg = arbiter.cfg;
    this.master = new MasterMetrics(cfg.metricsNamespace, HANDLED_SIGNALS.map(signalName));
    this.store = prepareStore(cfg, arbiter.pid, arbiter.log);
    this.master.setStoreUp(this.store.kind, true);
    this.collector = new Collector(
      {
        workers: () =>
          [...arbiter.workers.values()]
            .filter((w) => w.pid > 0)
            .map((w) => ({
              pid: w.pid,
              seat: w.seat,
              age: w.age,
              state: w.state,
              stateSince: w.stateSince,
              spawnedAt: w.spawnedAt,
              booted: w.booted,
            })),
        requestFlush: (pid, timeoutMs) => {
          const w = arbiter.workers.get(pid);
          return w ? arbiter.requestFlush(w, timeoutMs) : Promise.resolve(null);
        },
      },
      this.store,
      this.master,
      this.sampler,
      { scrapeTimeoutMs: cfg.scrapeTimeout * 1000, log: arbiter.log },
    );
    arbiter.events.on('signal', (name) => this.master?.countSignal(name));
    arbiter.events.on('store-errors', (n) => this.master?.countStoreErrors('worker', n));
    arbiter.events.on('pushed', (w, seq) => this.collector?.pushed(w.pid, seq));
    arbiter.events.on('exit', (w, code, signal) => this.onWorkerExit(w, code, signal));
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
    const cfg = this.arbiter.cfg;
    const server = new MetricsServer(metricsServerOptions(cfg, this.collector!, this.arbiter.log));
    // Kept before start() resolves, so that a stop during the port retries can cancel them.
    this.server = server;
    try {
      await server.start();
    } catch (err) {
      this.server = null;
      this.arbiter.log.error(
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
    const pids = [...this.arbiter.workers.values()].filter((w) => w.pid > 0).map((w) => w.pid);
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
      const pid = this.arbiter.pid;
      await this.store.writeSnapshot({ version: 1, pid, seat: 0, ppid: pid, seq: ++this.masterSeq, takenAt: Date.now(), metrics });
      // Workers refresh their own key on every write; this keeps a blocked worker's key alive too.
      await this.store.refresh?.([pid, ...livePids]);
      this.master?.setStoreUp(this.store.kind, true);
    } catch (err) {
      this.master?.countStoreErrors('primary');
      this.master?.setStoreUp(this.store.kind, false);
      if (this.masterSeq % 60 === 1) this.arbiter.log.warning(`metrics: cannot write the primary's snapshot: ${(err as Error).message}`);
    }
  }

  private onWorkerExit(w: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    void this.collector?.fold(w.pid);
    if (this.arbiter.isStopping || w.stopReason === 'scale-down') return;
    const reason: RestartReason =
      w.stopReason && w.stopReason !== 'exit' ? w.stopReason : signal ? 'killed' : code !== 0 ? 'crash' : 'exit';
    this.master?.countRestart(reason);
  }
}
