// One frame of `promfork top`, computed from two scrapes: counters become rates over the real time between
// the scrapes, histogram buckets become p50/p99 over the same interval (histogram_quantile's linear
// interpolation inside a bucket), gauges are read as they are. Pure: no I/O, no clock.

import { PromforkError } from '../errors.js';
import type { Exposition, ParsedSample } from './exposition-parser.js';

/** One parsed scrape and when it was answered. */
export interface ScrapeSnapshot {
  exposition: Exposition;
  /** Monotonic milliseconds (performance.now()) when the answer arrived. */
  at: number;
  /** Wall-clock time of the answer, for the header. */
  time: Date;
}

/** Every seat that ever served (live or retired): the server's totals. */
export interface TotalRow {
  requests: number;
  requestRate: number | null;
  p50: number | null;
  p99: number | null;
  failures: number;
  failureRate: number | null;
}

/** One worker seat: its traffic as the totals, and its process. */
export interface WorkerRow extends TotalRow {
  workerId: string;
  pid: number | null;
  state: string | null;
  memoryBytes: number | null;
  cpuPercent: number | null;
  uptimeSeconds: number | null;
}

export interface MasterInfo {
  restarts: number;
  /** [reason, count] with count > 0, sorted by reason. */
  reasons: [string, number][];
  /** [signal, count] with count > 0, sorted by signal. */
  signals: [string, number][];
}

export interface Frame {
  url: string;
  time: Date;
  /** Seconds between the two scrapes the rates come from; null on a first frame (no rates yet). */
  elapsedSeconds: number | null;
  workers: WorkerRow[];
  total: TotalRow;
  master: MasterInfo;
}

/**
 * Checks that a scrape is a promfork exposition for `namespace` and throws PROMFORK_ERR_SCRAPE_FORMAT
 * (naming the namespaces it did find) when it is not.
 */
export function checkNamespace(exp: Exposition, namespace: string, url: string): void {
  const marker = `${namespace}_master_worker_restarts_total`;
  if (exp.samples.some((s) => s.name === marker)) return;
  const found = [...new Set(exp.samples.map((s) => /^(.+)_master_worker_restarts_total$/.exec(s.name)?.[1]).filter((n) => n !== undefined))];
  const fix = found.length > 0
    ? `the server uses --metrics-namespace ${found.join(', ')}: run promfork top --namespace ${found[0]}`
    : '--url must name the metrics endpoint of a promfork server (promfork or promfork exporter)';
  throw new PromforkError('PROMFORK_ERR_SCRAPE_FORMAT', `${url} has no ${marker} metric; ${fix}`);
}

export function computeFrame(prev: ScrapeSnapshot | null, cur: ScrapeSnapshot, opts: { namespace: string; url: string }): Frame {
  const ns = opts.namespace;
  const dt = prev === null ? null : (cur.at - prev.at) / 1000;
  const elapsed = dt !== null && dt > 0 ? dt : null;
  const now = index(cur.exposition);
  const before = prev === null ? null : index(prev.exposition);
  const rate = (n: number) => (elapsed === null ? null : n / elapsed);

  const seatIds = new Set<string>();
  for (const s of [...now.get(`${ns}_worker_state`), ...now.get('promfork_worker_pid')]) {
    if (s.labels.worker_id !== undefined) seatIds.add(s.labels.worker_id);
  }
  const gauge = (name: string, id: string): number | null => {
    const s = now.get(name).find((x) => x.labels.worker_id === id);
    return s === undefined || Number.isNaN(s.value) ? null : s.value;
  };
  const bySeat = (id: string) => (s: ParsedSample) => s.labels.worker_id === id;
  const all = () => true;

  const counterOver = (name: string, match: (s: ParsedSample) => boolean) => {
    const samples = now.get(name).filter(match);
    const total = samples.reduce((a, s) => a + s.value, 0);
    if (before === null) return { total, delta: null };
    const prevValues = new Map(before.get(name).filter(match).map((s) => [seriesKey(s), s.value]));
    let delta = 0;
    for (const s of samples) delta += counterDelta(s.value, prevValues.get(seriesKey(s)));
    return { total, delta };
  };
  const quantilesOver = (match: (s: ParsedSample) => boolean): { p50: number | null; p99: number | null } => {
    if (before === null) return { p50: null, p99: null };
    const buckets = bucketDeltas(now.get(`${ns}_worker_request_duration_seconds_bucket`), before.get(`${ns}_worker_request_duration_seconds_bucket`), match);
    return { p50: histogramQuantile(0.5, buckets), p99: histogramQuantile(0.99, buckets) };
  };

  const workers: WorkerRow[] = [...seatIds].sort(bySeatNumber).map((id) => {
    const requests = counterOver(`${ns}_worker_requests_total`, bySeat(id));
    const failures = counterOver(`${ns}_worker_failed_requests_total`, bySeat(id));
    const states = now.get(`${ns}_worker_state`).filter((s) => s.labels.worker_id === id && s.value === 1);
    states.sort((a, b) => Number(b.labels.timestamp ?? 0) - Number(a.labels.timestamp ?? 0));
    return {
      workerId: id,
      pid: gauge('promfork_worker_pid', id),
      state: states[0]?.labels.state ?? null,
      requests: requests.total,
      requestRate: requests.delta === null ? null : rate(requests.delta),
      ...quantilesOver(bySeat(id)),
      failures: failures.total,
      failureRate: failures.delta === null ? null : rate(failures.delta),
      memoryBytes: gauge(`${ns}_worker_memory_bytes`, id),
      cpuPercent: gauge(`${ns}_worker_cpu_percent`, id),
      uptimeSeconds: gauge(`${ns}_worker_uptime_seconds`, id),
    };
  });

  const requests = counterOver(`${ns}_worker_requests_total`, all);
  const failures = counterOver(`${ns}_worker_failed_requests_total`, all);
  const total: TotalRow = {
    requests: requests.total,
    requestRate: requests.delta === null ? null : rate(requests.delta),
    ...quantilesOver(all),
    failures: failures.total,
    failureRate: failures.delta === null ? null : rate(failures.delta),
  };

  const byLabel = (name: string, label: string): [string, number][] => {
    const m = new Map<string, number>();
    for (const s of now.get(name)) {
      const k = s.labels[label];
      if (k !== undefined) m.set(k, (m.get(k) ?? 0) + s.value);
    }
    return [...m].filter(([, v]) => v > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  };
  const master: MasterInfo = {
    restarts: now.get(`${ns}_master_worker_restarts_total`).reduce((a, s) => a + s.value, 0),
    reasons: byLabel(`${ns}_master_worker_restart_reasons_total`, 'reason'),
    signals: byLabel(`${ns}_master_signals_total`, 'signal'),
  };

  return { url: opts.url, time: cur.time, elapsedSeconds: elapsed, workers, total, master };
}

/**
 * How much a counter grew: a series that was not there before counted from zero (a new seat, a first
 * failure on an endpoint), and a counter that went down was reset (the server restarted), so it also counts
 * from zero, as Prometheus's rate() reads a reset. Never negative.
 */
export function counterDelta(cur: number, prev: number | undefined): number {
  if (prev === undefined || cur < prev) return Math.max(0, cur);
  return cur - prev;
}

export interface Bucket {
  /** Upper bound (`le`), +Inf for the last. */
  le: number;
  /** Cumulative count. */
  count: number;
}

/**
 * The bucket increases over the interval, summed over the histogram series that `match` selects (a series is
 * `le` aside, its other labels). A series with any bucket that went down was reset: its current counts are
 * the increase, as for counters.
 */
export function bucketDeltas(cur: ParsedSample[], prev: ParsedSample[], match: (s: ParsedSample) => boolean): Bucket[] {
  const groups = (samples: ParsedSample[]) => {
    const g = new Map<string, Map<number, number>>();
    for (const s of samples) {
      if (!match(s) || s.labels.le === undefined) continue;
      const { le, ...rest } = s.labels;
      const key = seriesKey({ name: s.name, labels: rest, value: 0 });
      let m = g.get(key);
      if (!m) g.set(key, (m = new Map()));
      m.set(Number(le === '+Inf' ? Infinity : le), s.value);
    }
    return g;
  };
  const now = groups(cur);
  const before = groups(prev);
  const sum = new Map<number, number>();
  for (const [key, buckets] of now) {
    const old = before.get(key);
    const reset = old !== undefined && [...buckets].some(([le, v]) => v < (old.get(le) ?? 0));
    for (const [le, v] of buckets) sum.set(le, (sum.get(le) ?? 0) + (old === undefined || reset ? v : v - (old.get(le) ?? 0)));
  }
  return [...sum].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/**
 * Prometheus's histogram_quantile over cumulative buckets: the bucket where the rank falls, then linear
 * interpolation inside it (from 0 for the first bucket); a rank in the +Inf bucket gives the highest finite
 * bound. Null when there is no observation (or no +Inf bucket).
 */
export function histogramQuantile(q: number, buckets: Bucket[]): number | null {
  if (buckets.length < 2 || buckets[buckets.length - 1]!.le !== Infinity) return null;
  // Cumulative counts must not decrease (float noise, a scrape torn between series): as Prometheus does.
  const counts: number[] = [];
  for (const b of buckets) counts.push(Math.max(b.count, counts[counts.length - 1] ?? 0));
  const observations = counts[counts.length - 1]!;
  if (!(observations > 0)) return null;
  if (q <= 0) return -Infinity;
  if (q >= 1) return Infinity;
  let rank = q * observations;
  let b = counts.findIndex((c) => c >= rank);
  if (b < 0) b = counts.length - 1;
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.le;
  if (b === 0 && buckets[0]!.le <= 0) return buckets[0]!.le;
  let start = 0;
  let count = counts[b]!;
  if (b > 0) {
    start = buckets[b - 1]!.le;
    count -= counts[b - 1]!;
    rank -= counts[b - 1]!;
  }
  return start + (buckets[b]!.le - start) * (rank / count);
}

function seriesKey(s: ParsedSample): string {
  return `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
}

function seatNumber(id: string): number {
  const m = /^worker_(\d+)$/.exec(id);
  return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

function bySeatNumber(a: string, b: string): number {
  return seatNumber(a) - seatNumber(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Samples by their name. */
function index(exp: Exposition): { get(name: string): ParsedSample[] } {
  const m = new Map<string, ParsedSample[]>();
  for (const s of exp.samples) {
    let list = m.get(s.name);
    if (!list) m.set(s.name, (list = []));
    list.push(s);
  }
  return { get: (name) => m.get(name) ?? [] };
}
