// The metrics of the Python Gunicorn Prometheus Exporter for any worker class: an Instrumentation
// (src/workers/instrumentation.ts) the worker calls at fixed points; its class knows nothing of metrics.
//
// The request path only bumps plain numbers (WorkerMetrics). Snapshots (ours plus the app's prom-client
// registries) are persisted to the store and announced to the primary (IPC `pushed`) on the worker's own schedule:
// - while requests keep coming, every busyPushMs(): 250 ms up to 8 workers, 30 ms per worker beyond, at most
//   `metricsFlushInterval` (default 1 s);
// - QUIET_MS after traffic pauses (no request finished during QUIET_MS), so the store is exact soon after, at
//   most every QUIET_SPACING_MS;
// - every `metricsFlushInterval` anyway when the app's own metrics changed without requests;
// - when a scrape asks (IPC `flush`) and this worker is idle: no request in flight, and none finished during a few
//   looks (~20 ms; then the answer is exact). A busy worker (requests in flight, or still finishing: it looks after a poll of
//   its event loop, then every BUSY_PROBE_MS) answers with the seq it last persisted, without collecting, even
//   while a push is being written;
// - on every controlled exit.
// A SIGKILLed worker loses what it counted since its last push: at most busyPushMs() of its traffic
// (docs/metrics.md).

import { createRequire } from 'node:module';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PrimaryToWorker } from '../ipc.js';
import type { Snapshot, MetricFamily } from '../store/snapshot.js';
import type { SnapshotStore } from '../store/store.js';
import { openStore } from '../store/open-store.js';
import type { Instrumentation, InstrumentedWorker, MakeInstrumentation } from '../workers/instrumentation.js';
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

/**
 * A scrape's flush request finds requests counted since the last push: the worker looks for more this often (up
 * to QUIET_MS) to decide between busy (answer with the last push) and stopped traffic (flush: exact).
 */
export const BUSY_PROBE_MS = 2;
/**
 * Timed looks before a worker with no request in flight and none finished takes the traffic as stopped and
 * flushes (a scrape after the traffic waits ~20 ms for them, within its deadline even on a loaded machine). Two
 * looks (~5 ms) took a pause of a loaded client for the end of its traffic now and then (a clean-clone CI run on
 * Node 24: one scrape of five under traffic waited for a collection).
 */
export const BUSY_PROBE_LOOKS = 8;

/** Under steady traffic the primary reads at most about 1000 / PUSH_MS_PER_WORKER snapshots per second. */
export const PUSH_MS_PER_WORKER = 30;

/**
 * How often a busy worker pushes: what it loses when SIGKILLed is at most this much of its traffic. Short with few
 * workers (QUIET_SPACING_MS), longer with many (the primary reads and parses every push), never longer than the
 * flush interval.
 */
export function busyPushMs(flushIntervalMs: number, workers: number): number {
  return Math.min(flushIntervalMs, Math.max(QUIET_SPACING_MS, workers * PUSH_MS_PER_WORKER));
}

/** Attach to a worker with `worker.instrument(prometheusInstrumentation)` before it boots. */
export const prometheusInstrumentation: MakeInstrumentation = (worker) => new PrometheusInstrumentation(worker);

class PrometheusInstrumentation implements Instrumentation {
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
  /** Under steady traffic a snapshot is pushed this often (pushEveryMs()). */
  private busyPushMs = 1000;

  constructor(private readonly w: InstrumentedWorker) {}

  async init(): Promise<void> {
    const { cfg } = this.w;
    this.metrics = new WorkerMetrics({
      namespace: cfg.metricsNamespace,
      seat: this.w.seat,
      endpointCap: cfg.endpointCap,
      endpointLabel: this.w.hooks.endpointLabel,
    });
    this.intervalMs = cfg.metricsFlushInterval * 1000;
    this.busyPushMs = busyPushMs(this.intervalMs, cfg.workers);
    this.store = await openStore(cfg, this.w.ppid, this.w.log);
  }

  run(): void {
    // After the app was loaded: it decides which copies of prom-client are in use.
    this.appRegistries = new AppRegistries(this.w.cfg.app, this.w.cfg.chdir);
    this.flushTimer = setInterval(() => {
      // Under traffic the quiet timer pushes; this catches the app's own changes and refreshes an idle snapshot.
      if (!this.current && performance.now() - this.collectedAt >= this.intervalMs * 0.9) void this.flush();
    }, this.intervalMs);
    this.flushTimer.unref();
    this.quietTimer = setTimeout(() => this.tick(), QUIET_MS);
    this.quietTimer.unref();
    void this.flush();
  }

  requestFinished(req: IncomingMessage, res: ServerResponse, durationNs: bigint, error: unknown): void {
    try {
      this.metrics.observe(req, res.statusCode, durationNs, error);
      if (!this.armed && this.quietTimer) {
        this.armed = true;
        this.tickSeen = this.metrics.requests;
        this.quietTimer.refresh();
      }
    } catch (err) {
      // A metrics failure never fails a request.
      this.w.log.error('metrics: failed to count a request', err);
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
      if (!this.current && performance.now() - this.collectedAt >= this.busyPushMs) void this.flush();
      this.quietTimer!.refresh();
    }
  }

  control(msg: PrimaryToWorker): void {
    if (msg.t !== 'flush') return;
    const answer = (ok: boolean, current: boolean) =>
      this.w.send({ t: 'flushed', id: msg.id, ok, seq: this.persistedSeq, storeErrors: this.storeErrors, current });
    // A request that waited past its scrape's deadline (this worker was blocked): nobody waits for a collection, but
    // the answer at once tells the primary that this worker is running again (its next scrape asks it).
    if (msg.until !== undefined && Date.now() > msg.until) return answer(true, false);
    if (this.persistedSeq > 0) {
      const inflight = this.w.requestsInFlight();
      // Idle and nothing counted since the last collection: what is persisted is current.
      const unchanged = this.metrics.requests === this.collectedRequests;
      if (!this.current && inflight === 0 && unchanged && performance.now() - this.collectedAt < this.intervalMs) {
        return answer(true, true);
      }
      // Requests in flight, or finished since the last push: is the traffic still going on? Look after one poll,
      // then BUSY_PROBE_LOOKS times every BUSY_PROBE_MS. Busy once more requests finished than were in flight when
      // asked (new traffic): the scrape is served its last push (at most busyPushMs() old) without a collection on
      // a loaded event loop. A response already sent whose close comes after this message is not new traffic.
      // Otherwise, with nothing in flight any more, the traffic has stopped: flush, so that a scrape after the
      // traffic is exact; with a request still running (a long one), answer with the last push.
      if (this.armed || inflight > 0) {
        const seen = this.metrics.requests;
        const busy = () => this.metrics.requests - seen > inflight;
        let looked = 0;
        const look = () => {
          if (busy()) return answer(true, false);
          // The timer may fire first thing after the process waited for a core (a loaded machine): look once
          // more after the event loop has polled for what arrived meanwhile.
          setImmediate(() => {
            if (busy()) answer(true, false);
            else if (++looked < BUSY_PROBE_LOOKS) setTimeout(look, BUSY_PROBE_MS);
            else if (this.w.requestsInFlight() > 0) answer(true, false);
            else void this.flush().then((ok) => answer(ok, ok));
          });
        };
        // First after one poll of the event loop: under load that already ran more requests (no timer to wait).
        setImmediate(() => (busy() ? answer(true, false) : setTimeout(look, BUSY_PROBE_MS)));
        return;
      }
    }
    void this.flush().then((ok) => answer(ok, ok));
  }

  heartbeat(): { storeErrors?: number } {
    return { storeErrors: this.storeErrors };
  }

  async beforeExit(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), FINAL_FLUSH_MS);
    });
    const ok = await Promise.race([this.flush(), timeout]);
    clearTimeout(timer);
    if (!ok) this.w.log.warning(`metrics: the final snapshot of worker ${this.w.pid} was not persisted`);
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
      const external = this.w.externalMetricFamilies();
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
        pid: this.w.pid,
        seat: this.w.seat,
        ppid: this.w.ppid,
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
      this.w.send({ t: 'pushed', seq: snapshot.seq });
      return true;
    } catch (err) {
      this.storeErrors++;
      if (this.storeErrors === 1 || this.storeErrors % 100 === 0) {
        this.w.log.warning(`metrics: cannot write the snapshot (${this.storeErrors} failures so far): ${describe(err)}`);
      }
      return false;
    }
  }
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
