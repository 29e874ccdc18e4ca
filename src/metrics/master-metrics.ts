// Metrics the primary owns: the master metrics of the Python exporter's API reference, the per-worker resource and state gauges
// (from the primary's own records and /proc, so they stay true while a worker is blocked), and
// the exporter's health. Only live workers have gauge series (docs/design.md, L2); `promfork_worker_pid` names the
// process now in each seat (for `promfork top` and for finding a worker to inspect).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricFamily } from '../store/snapshot.js';
import { workerId } from './worker-metrics.js';
import type { ProcessSampler } from './process-sampler.js';

export type WorkerState = 'booting' | 'running' | 'quitting' | 'aborting';

export interface WorkerView {
  pid: number;
  seat: number;
  age: number;
  state: WorkerState;
  /** Unix seconds at which the worker entered `state`. */
  stateSince: number;
  /** Unix milliseconds at spawn. */
  spawnedAt: number;
  /** Unix milliseconds of its last persisted snapshot the primary has read, or null. */
  snapshotTakenAt: number | null;
}

export const RESTART_REASONS = ['crash', 'killed', 'timeout', 'max-requests', 'reload', 'term', 'parent', 'exit'] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

export class MasterMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter;
  private readonly restartReasons: Counter<'reason'>;
  private readonly signals: Counter<'signal'>;
  private readonly memory: Gauge<'worker_id'>;
  private readonly cpu: Gauge<'worker_id'>;
  private readonly uptime: Gauge<'worker_id'>;
  private readonly state: Gauge<'worker_id' | 'state' | 'timestamp'>;
  private readonly snapshotAge: Gauge<'worker_id'>;
  private readonly pid: Gauge<'worker_id'>;
  readonly scrapeDuration: Histogram;
  private readonly storeErrors: Counter<'process'>;
  private readonly mergeConflicts: Counter;
  private readonly counterDrops: Counter;
  private readonly storeUp: Gauge<'store'>;

  /** `signals`: the names of the signals the primary handles (their series exist at 0 from the start). */
  constructor(ns: string, signals: readonly string[] = []) {
    const registers = [this.registry];
    this.restarts = new Counter({
      name: `${ns}_master_worker_restarts_total`,
      help: 'Workers that died or were recycled and were replaced, whatever the cause',
      registers,
    });
    this.restartReasons = new Counter({
      name: `${ns}_master_worker_restart_reasons_total`,
      help: 'Worker restarts by cause (crash, killed, timeout, max-requests, reload, term, parent, exit)',
      labelNames: ['reason'],
      registers,
    });
    this.signals = new Counter({
      name: `${ns}_master_signals_total`,
      help: 'Signals received by the primary',
      labelNames: ['signal'],
      registers,
    });
    this.memory = new Gauge({ name: `${ns}_worker_memory_bytes`, help: 'Resident memory per worker', labelNames: ['worker_id'], registers });
    this.cpu = new Gauge({
      name: `${ns}_worker_cpu_percent`,
      help: 'CPU use per worker over the last sampling interval (percent of one core)',
      labelNames: ['worker_id'],
      registers,
    });
    this.uptime = new Gauge({ name: `${ns}_worker_uptime_seconds`, help: 'Worker uptime', labelNames: ['worker_id'], registers });
    this.state = new Gauge({
      name: `${ns}_worker_state`,
      help: 'Worker state (1): booting, running, quitting or aborting; timestamp = unix second it entered the state',
      labelNames: ['worker_id', 'state', 'timestamp'],
      registers,
    });
    this.snapshotAge = new Gauge({
      name: 'promfork_worker_snapshot_age_seconds',
      help: 'Age of the worker snapshot served by the last scrape (staleness: the worker did not flush in time)',
      labelNames: ['worker_id'],
      registers,
    });
    this.pid = new Gauge({
      name: 'promfork_worker_pid',
      help: 'Process id of the worker now in the seat (one series per seat: a replacement updates it)',
      labelNames: ['worker_id'],
      registers,
    });
    this.scrapeDuration = new Histogram({
      name: 'promfork_scrape_duration_seconds',
      help: 'Time to answer a scrape of /metrics',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeErrors = new Counter({
      name: 'promfork_store_errors_total',
      help: 'Failed reads or writes of the metrics store',
      labelNames: ['process'],
      registers,
    });
    this.mergeConflicts = new Counter({
      name: 'promfork_merge_conflicts_total',
      help: 'Metric families skipped in a scrape because workers declared them with different types',
      registers,
    });
    this.counterDrops = new Counter({
      name: 'promfork_held_decreases_total',
      help: 'Counter or histogram samples that would have decreased beyond float rounding (a bug; held at their last value)',
      registers,
    });
    this.storeUp = new Gauge({
      name: 'promfork_store_up',
      help: 'Whether the last access to the metrics store (directory or redis) worked; 0: the store is missing, see the log',
      labelNames: ['store'],
      registers,
    });
    // Every series exists at 0 from the start: Prometheus's increase() cannot see the first restart of a reason
    // or the first signal otherwise (no sample before it), and the dashboard's per-reason panels would miss it.
    this.restarts.inc(0);
    for (const reason of RESTART_REASONS) this.restartReasons.inc({ reason }, 0);
    for (const signal of signals) this.signals.inc({ signal }, 0);
    this.storeErrors.inc({ process: 'worker' }, 0);
    this.storeErrors.inc({ process: 'primary' }, 0);
  }

  countSignal(name: string): void {
    this.signals.inc({ signal: name });
  }

  countRestart(reason: RestartReason): void {
    this.restarts.inc();
    this.restartReasons.inc({ reason });
  }

  countStoreErrors(process: 'worker' | 'primary', n = 1): void {
    if (n > 0) this.storeErrors.inc({ process }, n);
  }

  setStoreUp(store: string, up: boolean): void {
    this.storeUp.set({ store }, up ? 1 : 0);
  }

  countCounterDrop(): void {
    this.counterDrops.inc();
  }

  countConflicts(n: number): void {
    if (n > 0) this.mergeConflicts.inc(n);
  }

  /** Refresh the per-worker gauges: one series per seat, from its newest live worker. */
  updateWorkers(workers: WorkerView[], sampler: ProcessSampler | null, now = Date.now()): void {
    const bySeat = new Map<number, WorkerView>();
    for (const w of workers) {
      const cur = bySeat.get(w.seat);
      if (!cur || w.age > cur.age) bySeat.set(w.seat, w);
    }
    for (const g of [this.memory, this.cpu, this.uptime, this.state, this.snapshotAge, this.pid]) g.reset();
    for (const w of bySeat.values()) {
      const id = workerId(w.seat);
      const sample = sampler?.get(w.pid);
      if (sample) {
        this.memory.set({ worker_id: id }, sample.rssBytes);
        this.cpu.set({ worker_id: id }, Math.round(sample.cpuPercent * 100) / 100);
      }
      this.pid.set({ worker_id: id }, w.pid);
      this.uptime.set({ worker_id: id }, Math.max(0, (now - w.spawnedAt) / 1000));
      this.state.set({ worker_id: id, state: w.state, timestamp: String(w.stateSince) }, 1);
      if (w.snapshotTakenAt !== null) this.snapshotAge.set({ worker_id: id }, Math.max(0, (now - w.snapshotTakenAt) / 1000));
    }
  }

  async families(): Promise<MetricFamily[]> {
    return (await this.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
  }
}
