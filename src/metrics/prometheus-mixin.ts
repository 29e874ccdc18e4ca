// PrometheusMixin: adds the seed's metrics to any worker class. On the request path it only bumps
// numbers in memory; snapshots of its registry and of the app's prom-client registry are written to
// the store on a timer, when a scrape asks (IPC `flush`), and on every controlled exit.

import { createRequire } from 'node:module';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as promClient from 'prom-client';
import type { PrimaryToWorker } from '../ipc.js';
import type { Snapshot, MetricFamily } from '../store/snapshot.js';
import type { SnapshotStore } from '../store/store.js';
import { openStore } from '../store/open-store.js';
import { mergeFamilies } from '../exporter/merge.js';
import { Worker, type WorkerClass } from '../workers/base-worker.js';
import { parseAppSpec, resolveAppModule } from '../workers/app-loader.js';
import { WorkerMetrics } from './worker-metrics.js';

type AnyRegistry = { getMetricsAsJSON(): Promise<unknown[]> };

const FINAL_FLUSH_MS = 2000;
/** An idle worker's unchanged snapshot is rewritten this often: its age stays below this (plus a flush). */
export const SNAPSHOT_REFRESH_MS = 10_000;

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
    private registries: AnyRegistry[] = [];
    private seq = 0;
    /** The seq and content of the last snapshot persisted: an unchanged registry is not written again. */
    private persistedSeq = 0;
    private persistedBody = '';
    private persistedAt = 0;
    private storeErrors = 0;
    private current: Promise<boolean> | null = null;
    private next: Promise<boolean> | null = null;
    private flushTimer: NodeJS.Timeout | null = null;

    override async init(): Promise<void> {
      this.metrics = new WorkerMetrics({
        namespace: this.cfg.metricsNamespace,
        seat: this.seat,
        endpointCap: this.cfg.endpointCap,
        endpointLabel: this.hooks.endpointLabel,
      });
      this.store = await openStore(this.cfg, this.ppid, this.log);
      await super.init();
      this.registries = [this.metrics.registry, ...(await appRegistries(this.cfg.app, this.cfg.chdir))];
    }

    override run(): void {
      super.run();
      this.flushTimer = setInterval(() => void this.flush(), this.cfg.metricsFlushInterval * 1000);
      this.flushTimer.unref();
      void this.flush();
    }

    protected override requestFinished(req: IncomingMessage, res: ServerResponse, durationNs: bigint, error: unknown): void {
      try {
        this.metrics.observe(req, res.statusCode, durationNs, error);
      } catch (err) {
        // A metrics failure never fails a request.
        this.log.error('metrics: failed to count a request', err);
      }
    }

    protected override onControl(msg: PrimaryToWorker): void {
      if (msg.t !== 'flush') return;
      void this.flush().then((ok) =>
        this.send({ t: 'flushed', id: msg.id, ok, seq: this.persistedSeq, storeErrors: this.storeErrors }),
      );
    }

    protected override heartbeatInfo(): { storeErrors?: number } {
      return { storeErrors: this.storeErrors };
    }

    protected override async beforeExit(): Promise<void> {
      if (this.flushTimer) clearInterval(this.flushTimer);
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
        let families = (await Promise.all(this.registries.map((r) => r.getMetricsAsJSON()))).flat() as MetricFamily[];
        // The thread worker's threads: one snapshot per seat, their counters summed with ours (law L6).
        const external = this.externalMetricFamilies();
        if (external) families = mergeFamilies([families, ...(await external)]).families;
        // An idle worker's metrics do not change: skip the write, and the primary skips the read and parse. Every
        // SNAPSHOT_REFRESH_MS the unchanged snapshot is written again all the same, so a reader that cannot ask
        // the worker (the sidecar exporter) sees from its takenAt that the worker is alive and flushing.
        const body = JSON.stringify(families);
        const fresh = Date.now() - this.persistedAt < SNAPSHOT_REFRESH_MS;
        if (body === this.persistedBody && this.persistedSeq > 0 && fresh) return true;
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
 * The app's global prom-client registry, also when the app resolves its own copy of prom-client:
 * its custom metrics are aggregated across workers like ours.
 */
async function appRegistries(app: string | null, cwd: string): Promise<AnyRegistry[]> {
  const out = new Set<AnyRegistry>([promClient.register]);
  if (app) {
    try {
      const appFile = resolveAppModule(parseAppSpec(app).module, cwd);
      const theirs = createRequire(appFile).resolve('prom-client');
      const ours = createRequire(import.meta.url).resolve('prom-client');
      if (path.resolve(theirs) !== path.resolve(ours)) {
        const mod = (await import(theirs)) as { register?: AnyRegistry; default?: { register?: AnyRegistry } };
        const reg = mod.register ?? mod.default?.register;
        if (reg) out.add(reg);
      }
    } catch {
      // the app does not use prom-client
    }
  }
  return [...out];
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
