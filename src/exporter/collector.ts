// The collector in the primary: answers a scrape within the deadline (docs/design.md, L3). Workers persist snapshots on
// their own schedule and announce them (`pushed`); the collector reads each one as it arrives, so a scrape
// finds the snapshots already parsed (docs/design.md, L1: nothing is exposed that is not in the store). A scrape asks every
// live worker whether its persisted snapshot is current: an idle worker flushes what it counted since its last
// push and answers (so a scrape after traffic stops is exact), a busy one (requests in flight or still finishing
// within a few ms) answers without collecting (served from its last push, at most busyPushMs() old), and a worker that left an earlier request
// unanswered past the deadline is not waited for. The retired fold of dead workers is added so counters never go
// back.

import type { SnapshotStore } from '../store/store.js';
import type { MetricFamily, Snapshot } from '../store/snapshot.js';
import type { RetiredRecord } from '../store/run.js';
import type { FlushAnswer } from '../arbiter/worker-record.js';
import type { MasterMetrics, WorkerView } from '../metrics/master-metrics.js';
import type { ProcessSampler } from '../metrics/process-sampler.js';
import { MonotonicHold, RetiredTotals, mergeFamilies } from './merge.js';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, formatOpenMetrics, formatPrometheus } from './exposition.js';
import type { MetricsSource } from './metrics-server.js';

export interface CollectorWorker extends Omit<WorkerView, 'snapshotTakenAt'> {
  booted: boolean;
}

export interface CollectorHost {
  /** Live workers (forked, not yet reaped). */
  workers(): CollectorWorker[];
  /** The worker's answer (its persisted seq, and whether that is current), or null if it did not answer in time. */
  requestFlush(pid: number, timeoutMs: number): Promise<FlushAnswer | null>;
}

interface Log {
  warning(msg: string): void;
  error(msg: string, err?: unknown): void;
}

export class Collector implements MetricsSource {
  /** Last snapshot read per live (or dead, not yet folded) worker pid. */
  private readonly snapshots = new Map<number, Snapshot>();
  /**
   * When each worker last confirmed, by answering a flush request, that its cached snapshot is its current
   * state: an idle worker writes nothing new, yet its metrics are not stale (promfork_worker_snapshot_age_seconds).
   */
  private readonly confirmedAt = new Map<number, number>();
  readonly retired = new RetiredTotals();
  /**
   * Recently folded workers, persisted with the fold: a reader that saw a worker's snapshot before the fold
   * and reads the fold after it skips that snapshot (no double count). Bounded: the last RECENT_FOLDS pids.
   */
  private readonly folded = new Set<number>();
  /** Every dead worker seen: a late read must never bring its snapshot back (that would count it twice). */
  private readonly dead = new Set<number>();
  /** Scrapes waiting for the fold of a worker that is leaving. */
  private readonly folding = new Set<number>();
  private readonly foldWaiters = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  /** Changes whenever a dead worker is folded into the retired totals. */
  private foldCount = 0;
  private lastPart: { key: string; text: string; names: Set<string> } | null = null;
  /** When the last scrape came (performance.now()) and in which format: pushes are merged ahead while scrapes come often. */
  private lastScrape = { at: -Infinity, format: 'prometheus' as 'prometheus' | 'openmetrics' };
  private mergeAhead: NodeJS.Immediate | null = null;
  /** Reads started by `pushed`, per pid: the highest seq announced meanwhile. */
  private readonly reading = new Map<number, { want: number; done: Promise<void> }>();
  /** Counters and histograms never exposed below their last exposed value (a real drop is logged and counted). */
  private readonly hold = new MonotonicHold((series, before, now) => {
    this.master.countCounterDrop();
    this.opts.log.warning(`metrics: ${series} fell from ${before} to ${now}; held`);
  });

  constructor(
    private readonly host: CollectorHost,
    private readonly store: SnapshotStore,
    private readonly master: MasterMetrics,
    private readonly sampler: ProcessSampler | null,
    private readonly opts: { scrapeTimeoutMs: number; log: Log },
  ) {}

  async collect(format: 'prometheus' | 'openmetrics'): Promise<{ body: string; contentType: string }> {
    const started = performance.now();
    const workers = this.host.workers().filter((w) => w.pid > 0);
    const booted = workers.filter((w) => w.booted);
    // One deadline for the whole wait (docs/design.md, L3): the flushes, then the reads of what changed.
    const deadline = started + this.opts.scrapeTimeoutMs;
    const acks = await Promise.all(booted.map((w) => this.host.requestFlush(w.pid, this.opts.scrapeTimeoutMs)));
    // Read only what changed: a worker whose persisted seq is the one cached has nothing new. A busy worker's
    // answer ("not current") whose push is being read already is served the cached snapshot: it is not current
    // either way, and the scrape does not wait for a parse.
    const toRead = booted.filter((w, i) => {
      const cached = this.snapshots.get(w.pid);
      const ack = acks[i];
      return !cached || (ack !== null && ack.seq > cached.seq && (ack.current || !this.reading.has(w.pid)));
    });
    const readMs = Math.max(MIN_READ_MS, deadline - performance.now());
    // A read that a push started is waited for, not doubled (its `pushed` came before the answer: it reads that seq).
    const read = async (pid: number) => {
      const pending = this.reading.get(pid);
      if (pending) await withDeadline(pending.done, readMs, '').catch(() => {});
      if (!pending || !this.snapshots.has(pid)) await this.refresh(pid, false, readMs);
    };
    await Promise.all([...toRead.map((w) => read(w.pid)), this.sampler?.ensure(workers.map((w) => w.pid))]);
    const answeredAt = Date.now();
    booted.forEach((w, i) => {
      const ack = acks[i];
      if (ack?.current && this.snapshots.get(w.pid)?.seq === ack.seq) this.confirmedAt.set(w.pid, answeredAt);
    });

    // A worker on its way out (max-requests, TERM) that did not confirm it is current writes its final snapshot as
    // it exits, and the fold reads it: wait for that within the deadline, so a scrape after the traffic is exact.
    const leaving = booted.filter((w, i) => w.state === 'quitting' && !acks[i]?.current);
    if (leaving.length > 0) {
      const waitMs = Math.max(MIN_READ_MS, deadline - performance.now());
      await withDeadline(Promise.all(leaving.map((w) => this.whenFolded(w.pid))), waitMs, '').catch(() => {});
    }

    const masterFamilies = await this.masterFamilies();

    // From here on synchronous: a fold cannot interleave, so no series can step back.
    const workersPart = this.workersPart(format);
    this.lastScrape = { at: performance.now(), format };
    const own = masterFamilies.filter((f) => !workersPart.names.has(f.name));
    this.master.scrapeDuration.observe((performance.now() - started) / 1000);
    // The workers' families, then the primary's: each family once (docs/design.md, L6); the format needs no global order.
    return format === 'openmetrics'
      ? { body: workersPart.text + formatOpenMetrics(own), contentType: OPENMETRICS_CONTENT_TYPE }
      : { body: workersPart.text + formatPrometheus(own), contentType: PROMETHEUS_CONTENT_TYPE };
  }

  /**
   * The merged and formatted families of the workers (retired and live). Idle workers write no new snapshot, so
   * when no seq changed and nothing was folded, the text of the last scrape is served again without a merge.
   */
  private workersPart(format: 'prometheus' | 'openmetrics'): { text: string; names: Set<string> } {
    let key = `${format}|${this.foldCount}`;
    for (const [pid, snap] of this.snapshots) key += `|${pid}:${snap.seq}`;
    if (this.lastPart?.key === key) return this.lastPart;
    const parts: MetricFamily[][] = [this.retired.families()];
    for (const snap of this.snapshots.values()) parts.push(snap.metrics);
    const merged = mergeFamilies(parts);
    this.master.countConflicts(merged.conflicts.length);
    this.hold.apply(merged.families);
    let text = format === 'openmetrics' ? formatOpenMetrics(merged.families) : formatPrometheus(merged.families);
    if (format === 'openmetrics') text = text.slice(0, text.length - '# EOF\n'.length); // the primary's part ends it
    this.lastPart = { key, text, names: new Set(merged.families.map((f) => f.name)) };
    return this.lastPart;
  }

  /** The primary's own families, with the per-worker gauges refreshed from the live workers. */
  async masterFamilies(): Promise<MetricFamily[]> {
    const views: WorkerView[] = this.host
      .workers()
      .filter((w) => w.pid > 0)
      .map((w) => ({ ...w, snapshotTakenAt: this.currentAsOf(w.pid) }));
    this.master.updateWorkers(views, this.sampler);
    return this.master.families();
  }

  /** The time the served snapshot of worker `pid` was known to be current, or null before its first one. */
  private currentAsOf(pid: number): number | null {
    const taken = this.snapshots.get(pid)?.takenAt;
    if (taken === undefined) return null;
    return Math.max(taken, this.confirmedAt.get(pid) ?? 0);
  }

  /**
   * A worker announced that it persisted snapshot `seq`: read it now, so that scrapes find it parsed. One read per
   * worker at a time; announcements during a read are caught by one more read after it.
   */
  pushed(pid: number, seq: number): void {
    if (this.dead.has(pid) || (this.snapshots.get(pid)?.seq ?? 0) >= seq) return;
    const reading = this.reading.get(pid);
    if (reading) {
      reading.want = Math.max(reading.want, seq);
      return;
    }
    const loop = async (): Promise<void> => {
      while ((this.snapshots.get(pid)?.seq ?? 0) < state.want && !this.dead.has(pid)) {
        const before = this.snapshots.get(pid)?.seq ?? 0;
        await this.refresh(pid, false, PUSH_READ_MS);
        if ((this.snapshots.get(pid)?.seq ?? 0) === before) break; // unreadable now: the next push or scrape retries
        this.scheduleMergeAhead();
      }
    };
    const state = { want: seq, done: Promise.resolve() };
    this.reading.set(pid, state);
    state.done = loop().finally(() => this.reading.delete(pid));
  }

  /**
   * While scrapes come often (the last one less than MERGE_AHEAD_MS ago), a push that was read is merged and
   * formatted at once, off the scrape's path: the next scrape finds the text made (workersPart's cache). Scraped
   * every 15 s, as Prometheus does by default, nothing is merged ahead. What is merged is what the store holds
   * (docs/design.md, L1), and the counters are held as at a scrape.
   */
  private scheduleMergeAhead(): void {
    if (this.mergeAhead || performance.now() - this.lastScrape.at > MERGE_AHEAD_MS) return;
    this.mergeAhead = setImmediate(() => {
      this.mergeAhead = null;
      try {
        this.workersPart(this.lastScrape.format);
      } catch (err) {
        this.opts.log.error('metrics: merging ahead of a scrape failed', err);
      }
    });
  }

  /** Read a worker's persisted snapshot into the cache (never replacing it with an older one). */
  private async refresh(pid: number, forFold = false, readMs = 0): Promise<void> {
    try {
      // A hung store (Redis not answering) must not hold the scrape past its deadline (docs/design.md, L3).
      const snap = forFold
        ? await this.store.readSnapshot(pid)
        : await withDeadline(this.store.readSnapshot(pid), readMs, 'the store did not answer in time');
      const cur = this.snapshots.get(pid);
      if (this.dead.has(pid) && !forFold) return;
      if (snap && (!cur || snap.seq >= cur.seq)) this.snapshots.set(pid, snap);
      this.master.setStoreUp(this.store.kind, true);
    } catch (err) {
      this.master.countStoreErrors('primary');
      this.master.setStoreUp(this.store.kind, false);
      this.opts.log.warning(`metrics: cannot read the snapshot of worker ${pid}: ${(err as Error).message}`);
    }
  }

  /**
   * A worker exited: add its final counters to the retired totals (its seat keeps them) and drop its
   * snapshot. Until this completes, scrapes keep serving its cached values.
   */
  /** Resolves once worker `pid` is folded (at once if it was). */
  private whenFolded(pid: number): Promise<void> {
    if (this.dead.has(pid) && !this.folding.has(pid)) return Promise.resolve();
    let w = this.foldWaiters.get(pid);
    if (!w) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      w = { promise, resolve };
      this.foldWaiters.set(pid, w);
    }
    return w.promise;
  }

  async fold(pid: number): Promise<void> {
    if (this.dead.has(pid)) return;
    this.folding.add(pid);
    try {
      await this.foldNow(pid);
    } finally {
      this.folding.delete(pid);
      this.foldWaiters.get(pid)?.resolve();
      this.foldWaiters.delete(pid);
    }
  }

  private async foldNow(pid: number): Promise<void> {
    if (this.dead.has(pid)) return;
    this.dead.add(pid);
    if (this.dead.size > 100_000) this.dead.delete(this.dead.values().next().value!);
    // Until the fold completes, scrapes keep serving the cached snapshot.
    await this.refresh(pid, true);
    const snap = this.snapshots.get(pid);
    if (snap) this.retired.fold(snap.metrics);
    this.folded.add(pid);
    this.snapshots.delete(pid);
    this.confirmedAt.delete(pid);
    this.foldCount++;
    try {
      const record: RetiredRecord = { totals: this.retired.toJSON(), folded: [...this.folded] };
      await this.store.writeRetired(record);
      await this.store.removeSnapshot(pid);
      while (this.folded.size > RECENT_FOLDS) this.folded.delete(this.folded.values().next().value!);
    } catch (err) {
      this.master.countStoreErrors('primary');
      this.opts.log.warning(`metrics: cannot persist the fold of worker ${pid}: ${(err as Error).message}`);
    }
  }
}

const RECENT_FOLDS = 256;
/** Pushes are merged ahead of the next scrape while the last one is at most this old. */
const MERGE_AHEAD_MS = 2000;
/** A read after a push has no scrape waiting on it, but a hung store must not pile reads up. */
const PUSH_READ_MS = 5000;
/** Reading a snapshot that was just written takes well under this, even when the flushes used the deadline. */
const MIN_READ_MS = 50;

function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
