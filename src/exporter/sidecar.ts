// `promfork exporter`: the sidecar. Serves /metrics from the store (a directory or Redis) without a
// primary, with the same TLS and auth options. By default it serves this instance's live run; with
// --all-instances every instance in the store, each series labelled server="NAME". Its own health
// metrics (store reachable, snapshot ages, scrape time) are separate and never written to the store.

import { readdir } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Settings } from '../config/types.js';
import type { MetricFamily, Snapshot } from '../store/snapshot.js';
import type { SnapshotStore } from '../store/store.js';
import { readRetiredRecord, type RunData } from '../store/run.js';
import { DirectoryStore, checkStoreDirectory } from '../store/directory-store.js';
import { RedisStore } from '../store/redis-store.js';
import { redisOptions } from '../store/open-store.js';
import { MonotonicHold, RetiredTotals, mergeFamilies } from './merge.js';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, formatOpenMetrics, formatPrometheus } from './exposition.js';
import type { MetricsSource } from './metrics-server.js';
import { workerId } from '../metrics/worker-metrics.js';
import { isPromforkPrimary } from '../pid-alive.js';

interface Log {
  info(msg: string): void;
  warning(msg: string): void;
  error(msg: string, err?: unknown): void;
}

export interface Run {
  server: string;
  ppid: number;
  store: SnapshotStore;
}

/** The families of what the primary persists with its fold (a RetiredRecord), and the pids folded into them. */
export function retiredFamilies(data: unknown): { families: MetricFamily[]; folded: Set<number> } {
  if (!data || typeof data !== 'object') return { families: [], folded: new Set() };
  const record = readRetiredRecord(data);
  return { families: RetiredTotals.fromJSON(record.totals).families(), folded: new Set(record.folded) };
}

/** One run's families: retired totals plus every snapshot not yet folded (a fold in progress is never counted twice). */
export function runFamilies(snapshots: Snapshot[], retired: unknown): MetricFamily[] {
  const { families, folded } = retiredFamilies(retired);
  const parts = [families, ...snapshots.filter((s) => !folded.has(s.pid)).map((s) => s.metrics)];
  return mergeFamilies(parts).families;
}

function withServerLabel(families: MetricFamily[], server: string): MetricFamily[] {
  return families.map((f) => ({ ...f, values: f.values.map((v) => ({ ...v, labels: { server, ...v.labels } })) }));
}

const runKey = (run: { server: string; ppid: number }): string => `${run.server}\u0000${run.ppid}`;

export class SidecarSource implements MetricsSource {
  private readonly registry = new Registry();
  private readonly storeUp: Gauge<'store'>;
  private readonly snapshotAge: Gauge<'server' | 'worker_id'>;
  private readonly scrapeDuration: Histogram;
  private readonly problems: Counter;
  private readonly stores = new Map<string, SnapshotStore>();
  private lister: RedisStore | null = null;
  /** The set of primaries sharing the directory last warned about. */
  private sharedWarned = '';
  /**
   * Per run (server and primary pid): its counters are never served below what was served before, also when the
   * store hands back older values for a while (a Redis failover loses the writes not yet replicated). A new run
   * (a restarted primary) starts from its own values: that is a reset Prometheus sees as one.
   */
  private readonly holds = new Map<string, MonotonicHold>();

  constructor(
    private readonly s: Settings,
    private readonly log: Log,
  ) {
    const registers = [this.registry];
    this.storeUp = new Gauge({ name: 'promfork_exporter_store_up', help: 'Whether the last read of the store worked', labelNames: ['store'], registers });
    this.snapshotAge = new Gauge({
      name: 'promfork_exporter_snapshot_age_seconds',
      help: 'Age of each worker snapshot served',
      labelNames: ['server', 'worker_id'],
      registers,
    });
    this.scrapeDuration = new Histogram({
      name: 'promfork_exporter_scrape_duration_seconds',
      help: 'Time to answer a scrape',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.problems = new Counter({ name: 'promfork_exporter_store_problems_total', help: 'Unreadable snapshots skipped', registers });
    new Gauge({ name: 'promfork_exporter_start_time_seconds', help: 'Unix time the sidecar started', registers })
      .set(Math.round(Date.now() / 10) / 100);
  }

  async collect(format: 'prometheus' | 'openmetrics'): Promise<{ body: string; contentType: string }> {
    const started = performance.now();
    const kind = this.s.redisEnabled ? 'redis' : 'directory';
    let families: MetricFamily[] = [];
    try {
      const runs = await this.findRuns();
      // Several live primaries in one directory are several servers: never merge their gauges (pids, memory).
      const labelled = this.s.allInstances || (!this.s.redisEnabled && runs.length > 1);
      const perRun = await Promise.all(
        runs.map(async (run) => {
          const { snapshots, problems, retired } = await readRun(run);
          if (problems.length > 0) {
            this.problems.inc(problems.length);
            for (const p of problems) this.log.warning(`exporter: ${p}`);
          }
          const now = Date.now();
          for (const snap of snapshots) {
            if (snap.pid === run.ppid) continue; // the primary's own snapshot
            this.snapshotAge.set({ server: run.server, worker_id: workerId(snap.seat) }, Math.max(0, (now - snap.takenAt) / 1000));
          }
          const fams = runFamilies(snapshots, retired);
          this.holdOf(run).apply(fams);
          return labelled ? withServerLabel(fams, run.server) : fams;
        }),
      );
      const live = new Set(runs.map(runKey));
      for (const key of this.holds.keys()) if (!live.has(key)) this.holds.delete(key);
      families = mergeFamilies(perRun).families;
      this.storeUp.set({ store: kind }, 1);
    } catch (err) {
      this.storeUp.set({ store: kind }, 0);
      this.log.warning(`exporter: cannot read the ${kind} store: ${(err as Error).message}`);
    }
    this.scrapeDuration.observe((performance.now() - started) / 1000);
    const own = (await this.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    this.snapshotAge.reset();
    const all = [...families, ...own].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return format === 'openmetrics'
      ? { body: formatOpenMetrics(all), contentType: OPENMETRICS_CONTENT_TYPE }
      : { body: formatPrometheus(all), contentType: PROMETHEUS_CONTENT_TYPE };
  }

  private holdOf(run: { server: string; ppid: number }): MonotonicHold {
    const key = runKey(run);
    let hold = this.holds.get(key);
    if (!hold) {
      hold = new MonotonicHold((series, before, now) => {
        this.log.warning(`exporter: ${series} fell from ${before} to ${now} in the store (${run.server}); held`);
      });
      this.holds.set(key, hold);
    }
    return hold;
  }

  /** The live runs to serve: this instance's, or every instance's with --all-instances. */
  async findRuns(): Promise<Run[]> {
    const found = this.s.redisEnabled ? await this.redisRuns() : await this.directoryRuns();
    return found.map(({ server, ppid }) => {
      const key = `${server}\u0000${ppid}`;
      const store =
        this.stores.get(key) ??
        (this.s.redisEnabled
          ? new RedisStore(redisOptions(this.s, ppid, this.log, server))
          : new DirectoryStore(this.s.multiprocDir, { ppid }));
      this.stores.set(key, store);
      return { server, ppid, store };
    });
  }

  private async directoryRuns(): Promise<{ server: string; ppid: number }[]> {
    // The checks the primary makes, on every scrape: a directory that is not private is not read at all.
    await checkStoreDirectory(this.s.multiprocDir);
    const entries = await readdir(this.s.multiprocDir, { withFileTypes: true });
    const ppids = new Set<number>();
    for (const entry of entries) {
      const m = /^promfork-(\d+)-(?:\d+|retired)\.json$/.exec(entry.name);
      // Only regular files (a FIFO or a link named like a snapshot is not one), and only a pid that is really a
      // promfork primary of this user (not 1, not a recycled pid).
      if (m && entry.isFile() && isPromforkPrimary(Number(m[1]))) ppids.add(Number(m[1]));
    }
    // A directory does not record server names: one live primary is this instance; several sharing the directory
    // are told apart by their pid (`NAME-PID`), and a line says how to give each its own name.
    if (ppids.size > 1) {
      const key = [...ppids].sort((a, b) => a - b).join(',');
      if (key !== this.sharedWarned) {
        this.sharedWarned = key;
        this.log.warning(
          `exporter: ${ppids.size} promfork primaries (pids ${key}) share ${this.s.multiprocDir}: served with server="${this.s.metricsInstance}-PID". Give each server its own PROMETHEUS_MULTIPROC_DIR (one sidecar each), or use Redis with PROMFORK_INSTANCE`,
        );
      }
      return [...ppids].map((ppid) => ({ server: `${this.s.metricsInstance}-${ppid}`, ppid }));
    }
    return [...ppids].map((ppid) => ({ server: this.s.metricsInstance, ppid }));
  }

  private async redisRuns(): Promise<{ server: string; ppid: number }[]> {
    // One long-lived connection for discovery, not one per scrape.
    this.lister ??= new RedisStore(redisOptions(this.s, process.pid, this.log, 'sidecar'));
    return (await this.lister.runs())
      .filter((r) => this.s.allInstances || r.instance === this.s.metricsInstance)
      .map((r) => ({ server: r.instance, ppid: r.ppid }));
  }

  async close(): Promise<void> {
    const stores = [...this.stores.values(), ...(this.lister ? [this.lister] : [])];
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
  }
}

/**
 * A run's snapshots and fold, consistent with a fold happening meanwhile: Redis reads both in one MGET; the
 * directory reads the snapshots first and the fold after, whose list of folded pids then excludes a snapshot
 * read before its fold (never counted twice, never missing).
 */
async function readRun(run: Run): Promise<RunData> {
  if (run.store instanceof RedisStore) return run.store.readRun(run.server, run.ppid);
  const { snapshots, problems } = await run.store.readAll();
  return { snapshots, problems, retired: await run.store.readRetired() };
}

