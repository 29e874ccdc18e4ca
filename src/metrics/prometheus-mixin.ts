// PrometheusMixin: adds the metrics of the Python Gunicorn Prometheus Exporter to any worker class.
//
// The request path only bumps plain numbers (WorkerMetrics). Snapshots (ours plus the app's prom-client
// registries) are persisted to the store and announced to the primary (IPC `pushed`) on the worker's own schedule:
// - while requests keep coming, at most every `metricsFlushInterval` (default 1 s);
// - QUIET_MS after traffic pauses (no request finished during QUIET_MS), so the store is exact soon after, at
//   most every QUIET_SPACING_MS;
// - every `metricsFlushInterval` anyway when the app's own metrics changed without requests;
// - when a scrape asks (IPC `flush`) and this worker has no request in flight (then it is idle: the answer is
//   exact); a worker with requests in flight answers at once with the seq it last persisted, without collecting;
// - on every controlled exit.
// A SIGKILLed worker loses what it counted since its last push: at most one interval under load, QUIET_MS of
// traffic otherwise (docs/metrics.md).

import { createRequire } from 'node:module';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PrimaryToWorker } from '../ipc.js';
import type { Snapshot, MetricFamily } from '../store/snapshot.js';
import type { SnapshotStore } from '../store/store.js';
import { openStore } from '../store/open-store.js';
import { Worker, type WorkerClass } from '../workers/base-worker.js';
import { parseAppSpec, resolveAppModule } from '../workers/app-loader.js';
import { WorkerMetrics } from './worker-metrics.js';

type AnyRegistry = { getMetricsAsJSON(): Promise<unknown[]> };

const FINAL_FLUSH_MS = 2000;
/** An idle worker's unchanged snapshot is rewritten this often: its age stays below this (plus a flush). */
export const SNAPSHOT_REFRESH_MS = 10_000;
/** Traffic counts as paused after this long without a finished request: the worker then pushes. */
export const QUIET_MS = 20;
/**
 * Pushes on a pause are at least this far apart (a busy machine makes short pauses in steady traffic): a worker
 * writes at most 1000 / QUIET_SPACING_MS snapshots per second on its own, whatever the traffic.
 */
export const QUIET_SPACING_MS = 250;

/** Classes made by withMetrics carry this static flag, so a class is never wrapped twice. */
export const HAS_METRICS = 'hasMetrics';

export function hasMetrics(cls: WorkerClass): boolean {
  return (cls as unknown as Record<string, unknown>)[HAS_METRICS] === true;
}

export function withMetrics(Base: WorkerClass): WorkerClass {
  if (hasMetrics(Base)) return Base;
  // `Base` is a concrete worker class; the cast lets TypeScript see its protected members.
  const Concrete = Base as unknown as abstract new (...args: ConstructorParameters<WorkerClass>) => Worker;

  abstract class PrometheusMixin extends Concrete {
    static readonly hasMetrics = true;
    metrics!: WorkerMetrics;
    store!: SnapshotStore;
    private appRegistries: AppRegistries | null = null;
    private seq = 0;
    /** The seq and content of the last snapshot persisted: an unchanged registry is not written again. */
    private persistedSeq = 0;
    private persistedBody = '';
    private persistedAt = 0;
    /** `metrics.requests` when the last persisted (or found unchanged) snapshot was collected. */
    private collectedRequests = -1;
    /** performance.now() of that collection. */
    private collectedAt = -Infinity;
    private storeErrors = 0;
    private current: Promise<boolean> | null = null;
    private next: Promise<boolean> | null = null;
    private flushTimer: NodeJS.Timeout | null = null;
    /** Fires QUIET_MS after it is armed (refresh(): one timer object, re-armed without allocating). */
    private quietTimer: NodeJS.Timeout | null = null;
    private armed = false;
    /** `metrics.requests` when the quiet timer was last armed or ticked. */
    private tickSeen = 0;
    private intervalMs = 1000;

    override async init(): Promise<void> {
      this.metrics = new WorkerMetrics({
        namespace: this.cfg.metricsNamespace,
        seat: this.seat,
        endpointCap: this.cfg.endpointCap,
        endpointLabel: this.hooks.endpointLabel,
      });
      this.intervalMs = this.cfg.metricsFlushInterval * 1000;
      this.store = await openStore(this.cfg, this.ppid, this.log);
      await super.init();
      this.appRegistries = new AppRegistries(this.cfg.app, this.cfg.chdir);
    }

    override run(): void {
      super.run();
      this.flushTimer = setInterval(() => {
        // Under traffic the quiet timer pushes; this catches the app's own changes and refreshes an idle snapshot.
        if (!this.current && performance.now() - this.collectedAt >= this.intervalMs * 0.9) void this.flush();
      }, this.intervalMs);
      this.flushTimer.unref();
      this.quietTimer = setTimeout(() => this.tick(), QUIET_MS);
      this.quietTimer.unref();
      void this.flush();
    }

    protected override requestFinished(req: IncomingMessage, res: ServerResponse, durationNs: bigint, error: unknown): void {
      try {
        this.metrics.observe(req, res.statusCode, durationNs, error);
        if (!this.armed && this.quietTimer) {
          this.armed = true;
          this.tickSeen = this.metrics.requests;
          this.quietTimer.refresh();
        }
      } catch (err) {
        // A metrics failure never fails a request.
        this.log.error('metrics: failed to count a request', err);
      }
    }

    /** QUIET_MS after arming, then every QUIET_MS while requests keep finishing. */
    private tick(): void {
      if (!this.armed) return;
      const n = this.metrics.requests;
      if (n === this.collectedRequests) {
        this.armed = false; // a scrape's flush already took these counts
      } else if (n === this.tickSeen && !this.current && performance.now() - this.collectedAt >= QUIET_SPACING_MS) {
        this.armed = false; // traffic paused: push now
        void this.flush();
      } else {
        this.tickSeen = n;
        // A write in progress started less than an interval ago: no second one queued behind it.
        if (!this.current && performance.now() - this.collectedAt >= this.intervalMs) void this.flush();
        this.quietTimer!.refresh();
      }
    }

    protected override onControl(msg: PrimaryToWorker): void {
      if (msg.t !== 'flush') return;
      const answer = (ok: boolean, current: boolean) =>
        this.send({ t: 'flushed', id: msg.id, ok, seq: this.persistedSeq, storeErrors: this.storeErrors, current });
      if (this.persistedSeq > 0 && !this.current) {
        // Busy: the scrape is served what was pushed last (at most one interval old); collecting now would make
        // every scrape wait on the busiest worker.
        if (this.requestsInFlight() > 0) return answer(true, false);
        // Idle and nothing counted since the last collection: what is persisted is current.
        const unchanged = this.metrics.requests === this.collectedRequests;
        if (unchanged && performance.now() - this.collectedAt < this.intervalMs) return answer(true, true);
      }
      void this.flush().then((ok) => answer(ok, ok));
    }

    protected override heartbeatInfo(): { storeErrors?: number } {
      return { storeErrors: this.storeErrors };
    }

    protected override async beforeExit(): Promise<void> {
      if (this.flushTimer) clearInterval(this.flushTimer);
      if (this.quietTimer) clearTimeout(this.quietTimer);
      this.quietTimer = null;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), FINAL_FLUSH_MS);
      });
      const ok = await Promise.race([this.flush(), timeout]);
      clearTimeout(timer);
      if (!ok) this.log.warning(`metrics: the final snapshot of worker ${this.pid} was not persisted`);
      await this.store.close();
    }

    /** Persist a snapshot now. Calls during a write share one follow-up write (which sees their counts). */
    flush(): Promise<boolean> {
      if (!this.current) {
        this.current = this.writeSnapshot().finally(() => {
          this.current = null;
        });
        return this.current;
      }
      this.next ??= this.current.then(() => {
        this.next = null;
        return this.flush();
      });
      return this.next;
    }

    private async writeSnapshot(): Promise<boolean> {
      try {
        const requests = this.metrics.requests;
        const collectedAt = performance.now();
        let families = this.metrics.families();
        for (const r of this.appRegistries?.loaded() ?? []) families = families.concat((await r.getMetricsAsJSON()) as MetricFamily[]);
        // The thread worker's threads: one snapshot per seat, their counters summed with ours (docs/design.md, L6).
        const external = this.externalMetricFamilies();
        if (external) {
          const { mergeFamilies } = await import('../exporter/merge.js');
          families = mergeFamilies([families, ...(await external)]).families;
        }
        // An idle worker's metrics do not change: skip the write, and the primary skips the read and parse. Every
        // SNAPSHOT_REFRESH_MS the unchanged snapshot is written again all the same, so a reader that cannot ask
        // the worker (the sidecar exporter) sees from its takenAt that the worker is alive and flushing.
        const body = JSON.stringify(families);
        const fresh = Date.now() - this.persistedAt < SNAPSHOT_REFRESH_MS;
        if (body === this.persistedBody && this.persistedSeq > 0 && fresh) {
          this.collectedRequests = requests;
          this.collectedAt = collectedAt;
          return true;
        }
        const snapshot: Snapshot = {
          version: 1,
          pid: this.pid,
          seat: this.seat,
          ppid: this.ppid,
          seq: ++this.seq,
          takenAt: Date.now(),
          metrics: families,
        };
        await this.store.writeSnapshot(snapshot);
        this.persistedAt = snapshot.takenAt;
        this.persistedSeq = snapshot.seq;
        this.persistedBody = body;
        this.collectedRequests = requests;
        this.collectedAt = collectedAt;
        // Persisted first (docs/design.md, L1), then announced: the primary reads it now, not when a scrape comes.
        this.send({ t: 'pushed', seq: snapshot.seq });
        return true;
      } catch (err) {
        this.storeErrors++;
        if (this.storeErrors === 1 || this.storeErrors % 100 === 0) {
          this.log.warning(`metrics: cannot write the snapshot (${this.storeErrors} failures so far): ${describe(err)}`);
        }
        return false;
      }
    }
  }
  return PrometheusMixin as unknown as WorkerClass;
}

/**
 * The app's global prom-client registries: the copy of prom-client next to promfork, and the app's own copy when
 * it resolves another one. A copy is used only once something loaded it (the app): a worker whose app does not
 * use prom-client never loads it (it costs ~5 MiB per worker).
 */
class AppRegistries {
  private readonly require = createRequire(import.meta.url);
  private readonly paths: string[] = [];
  private readonly found = new Map<string, AnyRegistry>();

  constructor(app: string | null, cwd: string) {
    const add = (p: string) => {
      if (!this.paths.includes(path.resolve(p))) this.paths.push(path.resolve(p));
    };
    try {
      add(this.require.resolve('prom-client'));
    } catch {
      // not installed next to promfork
    }
    if (app) {
      try {
        add(createRequire(resolveAppModule(parseAppSpec(app).module, cwd)).resolve('prom-client'));
      } catch {
        // the app does not resolve prom-client
      }
    }
  }

  /** The registries of the prom-client copies loaded so far (a map lookup per copy when none is). */
  loaded(): AnyRegistry[] {
    if (this.found.size < this.paths.length) {
      for (const p of this.paths) {
        if (this.found.has(p) || !this.require.cache[p]) continue;
        const mod = this.require(p) as { register?: AnyRegistry };
        if (mod.register) this.found.set(p, mod.register);
      }
    }
    return [...this.found.values()];
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
