// One frame of `promfork top`, computed from two scrapes: counters become rates over the real time between
// the scrapes, histogram buckets become p50/p99 over the same interval (histogram_quantile's linear
// interpolation inside a bucket), gauges are read as they are. Pure: no I/O, no clock.
//
// The sidecar with --all-instances (`promfork exporter --all-instances`) labels every series with the
// `server` it comes from, and each server has its own seats (`worker_0` once per server): the frame then has
// one block per server, each computed from that server's series only. Without the label (a primary, or the
// sidecar serving one instance) the frame is one block, as it always was.

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

/** One server of a sidecar with --all-instances: its seats, totals and master, from its series only. */
export interface ServerBlock {
  /** The `server` label (the server's --metrics-instance). */
  server: string;
  workers: WorkerRow[];
  total: TotalRow;
  /** Null while the server's master counters are not in the store yet (the primary writes them every 5 s). */
  master: MasterInfo | null;
  /** The oldest worker snapshot the sidecar served for this server (promfork_exporter_snapshot_age_seconds). */
  snapshotAgeSeconds: number | null;
}

export interface Frame {
  url: string;
  time: Date;
  /** Seconds between the two scrapes the rates come from; null on a first frame (no rates yet). */
  elapsedSeconds: number | null;
  /** The rows; with `servers`, every block's rows one after another. */
  workers: WorkerRow[];
  /** With `servers`: over the servers shown. */
  total: TotalRow;
  /** With `servers`: the servers shown, summed. */
  master: MasterInfo;
  /** Present when the series carry a `server` label (the sidecar with --all-instances). */
  servers?: {
    /** Every server in the scrape, sorted by name. */
    found: string[];
    /** The servers shown (all, or those of --server), sorted by name. */
    blocks: ServerBlock[];
  };
}

export interface FrameOptions {
  namespace: string;
  url: string;
  /** --server: show only these servers (empty or absent: all). */
  servers?: readonly string[];
}

/** The sidecar's own metrics (never in the store, never labelled by the servers' data). */
const EXPORTER_STORE_UP = 'promfork_exporter_store_up';
const EXPORTER_SNAPSHOT_AGE = 'promfork_exporter_snapshot_age_seconds';
const WORKER_PID = 'promfork_worker_pid';

/**
 * Checks that a scrape is a promfork exposition for `namespace` and throws PROMFORK_ERR_SCRAPE_FORMAT
 * (naming the namespaces it did find) when it is not. From promfork exporter (known by its own
 * promfork_exporter_store_up), the error says when its store is down or serves no server yet.
 */
export function checkNamespace(exp: Exposition, namespace: string, url: string): void {
  const marker = `${namespace}_master_worker_restarts_total`;
  if (exp.samples.some((s) => s.name === marker)) return;
  const storeUp = exp.samples.filter((s) => s.name === EXPORTER_STORE_UP);
  const sidecar = storeUp.length > 0;
  // The sidecar serves a server's worker series before the primary's snapshot (master counters, pids) is in
  // the store, for up to 5 s: a frame can be shown.
  if (sidecar && exp.samples.some((s) => s.name.startsWith(`${namespace}_worker_`))) return;
  const markers = sidecar ? /^(.+)_(?:master_worker_restarts|worker_requests)_total$/ : /^(.+)_master_worker_restarts_total$/;
  const found = [...new Set(exp.samples.map((s) => markers.exec(s.name)?.[1]).filter((n) => n !== undefined))];
  let fix: string;
  if (found.length > 0) fix = `the server uses --metrics-namespace ${found.join(', ')}: run promfork top --namespace ${found[0]}`;
  else if (sidecar) {
    const down = storeUp.filter((s) => s.value !== 1).map((s) => s.labels.store ?? 'metrics');
    fix =
      down.length > 0
        ? `it is promfork exporter and cannot read its ${down.join(', ')} store (promfork_exporter_store_up 0): see the exporter's log`
        : 'it is promfork exporter and serves no live server from its store yet: start one on the same store (the exporter serves its --metrics-instance, or every instance with --all-instances)';
  } else fix = '--url must name the metrics endpoint of a promfork server (promfork or promfork exporter)';
  throw new PromforkError('PROMFORK_ERR_SCRAPE_FORMAT', `${url} has no ${marker} metric; ${fix}`);
}

export function computeFrame(prev: ScrapeSnapshot | null, cur: ScrapeSnapshot, opts: FrameOptions): Frame {
  const ns = opts.namespace;
  const dt = prev === null ? null : (cur.at - prev.at) / 1000;
  const elapsed = dt !== null && dt > 0 ? dt : null;
  const now = index(cur.exposition);
  const before = prev === null ? null : index(prev.exposition);
  const found = serversOf(cur.exposition, ns);
  const wanted = opts.servers ?? [];
  if (found.length === 0) {
    if (wanted.length > 0) {
      throw new PromforkError(
        'PROMFORK_ERR_SCRAPE_FORMAT',
        `--server ${wanted.join(',')}: ${opts.url} has no server label (a promfork server's own endpoint, or promfork exporter without --all-instances); --server needs the endpoint of promfork exporter --all-instances`,
      );
    }
    const { workers, total, master } = computeView(now, before, elapsed, ns, () => true);
    return { url: opts.url, time: cur.time, elapsedSeconds: elapsed, workers, total, master };
  }

  const unknown = wanted.filter((name) => !found.includes(name));
  if (unknown.length > 0) {
    throw new PromforkError(
      'PROMFORK_ERR_SCRAPE_FORMAT',
      `--server ${unknown.join(',')}: no such server at ${opts.url}; the servers found there: ${found.join(', ')}`,
    );
  }
  const shown = wanted.length > 0 ? found.filter((name) => wanted.includes(name)) : found;
  const blocks: ServerBlock[] = shown.map((server) => {
    const { workers, total, master, masterReported } = computeView(now, before, elapsed, ns, (s) => s.labels.server === server);
    const ages = now.get(EXPORTER_SNAPSHOT_AGE).filter((s) => s.labels.server === server && Number.isFinite(s.value)).map((s) => s.value);
    return { server, workers, total, master: masterReported ? master : null, snapshotAgeSeconds: ages.length > 0 ? Math.max(...ages) : null };
  });
  const all = new Set(shown);
  const overall = computeView(now, before, elapsed, ns, (s) => s.labels.server !== undefined && all.has(s.labels.server), false);
  return {
    url: opts.url,
    time: cur.time,
    elapsedSeconds: elapsed,
    workers: blocks.flatMap((b) => b.workers),
    total: overall.total,
    master: overall.master,
    servers: { found, blocks },
  };
}

/**
 * The `server` label values of the namespace's series and the worker pids, sorted; empty when none has the
 * label. The sidecar's own metrics do not count: its snapshot ages name a server even without --all-instances.
 */
export function serversOf(exp: Exposition, namespace: string): string[] {
  const names = new Set<string>();
  for (const s of exp.samples) {
    const server = s.labels.server;
    if (server !== undefined && (s.name.startsWith(`${namespace}_`) || s.name === WORKER_PID)) names.add(server);
  }
  return [...names].sort(byName);
}

interface Index {
  get(name: string): ParsedSample[];
}

/**
 * Seats, totals and master counters over the series `scope` selects: every series for a server's own
 * endpoint, one server's for the sidecar with --all-instances. `masterReported` says whether the master's
 * counters are in the scope at all. With `seats` false, no seat rows are made.
 */
function computeView(
  now: Index,
  before: Index | null,
  elapsed: number | null,
  ns: string,
  scope: (s: ParsedSample) => boolean,
  seats = true,
): { workers: WorkerRow[]; total: TotalRow; master: MasterInfo; masterReported: boolean } {
  const rate = (n: number) => (elapsed === null ? null : n / elapsed);
  const get = (idx: Index, name: string) => idx.get(name).filter(scope);

  const seatIds = new Set<string>();
  if (seats) {
    for (const s of [...get(now, `${ns}_worker_state`), ...get(now, WORKER_PID)]) {
      if (s.labels.worker_id !== undefined) seatIds.add(s.labels.worker_id);
    }
  }
  const gauge = (name: string, id: string): number | null => {
    const s = get(now, name).find((x) => x.labels.worker_id === id);
    return s === undefined || Number.isNaN(s.value) ? null : s.value;
  };
  const bySeat = (id: string) => (s: ParsedSample) => s.labels.worker_id === id;
  const all = () => true;

  const counterOver = (name: string, match: (s: ParsedSample) => boolean) => {
    const samples = get(now, name).filter(match);
    const total = samples.reduce((a, s) => a + s.value, 0);
    if (before === null) return { total, delta: null };
    const prevValues = new Map(get(before, name).filter(match).map((s) => [seriesKey(s), s.value]));
    let delta = 0;
    for (const s of samples) delta += counterDelta(s.value, prevValues.get(seriesKey(s)));
    return { total, delta };
  };
  const quantilesOver = (match: (s: ParsedSample) => boolean): { p50: number | null; p99: number | null } => {
    if (before === null) return { p50: null, p99: null };
    const name = `${ns}_worker_request_duration_seconds_bucket`;
    const buckets = bucketDeltas(get(now, name), get(before, name), match);
    return { p50: histogramQuantile(0.5, buckets), p99: histogramQuantile(0.99, buckets) };
  };

  const workers: WorkerRow[] = [...seatIds].sort(bySeatNumber).map((id) => {
    const requests = counterOver(`${ns}_worker_requests_total`, bySeat(id));
    const failures = counterOver(`${ns}_worker_failed_requests_total`, bySeat(id));
    const states = get(now, `${ns}_worker_state`).filter((s) => s.labels.worker_id === id && s.value === 1);
    states.sort((a, b) => Number(b.labels.timestamp ?? 0) - Number(a.labels.timestamp ?? 0));
    return {
      workerId: id,
      pid: gauge(WORKER_PID, id),
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
    for (const s of get(now, name)) {
      const k = s.labels[label];
      if (k !== undefined) m.set(k, (m.get(k) ?? 0) + s.value);
    }
    return [...m].filter(([, v]) => v > 0).sort(([a], [b]) => byName(a, b));
  };
  const restarts = get(now, `${ns}_master_worker_restarts_total`);
  const master: MasterInfo = {
    restarts: restarts.reduce((a, s) => a + s.value, 0),
    reasons: byLabel(`${ns}_master_worker_restart_reasons_total`, 'reason'),
    signals: byLabel(`${ns}_master_signals_total`, 'signal'),
  };

  return { workers, total, master, masterReported: restarts.length > 0 };
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
  return seatNumber(a) - seatNumber(b) || byName(a, b);
}

/** Code-unit order, the same in every locale. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Samples by their name. */
function index(exp: Exposition): Index {
  const m = new Map<string, ParsedSample[]>();
  for (const s of exp.samples) {
    let list = m.get(s.name);
    if (!list) m.set(s.name, (list = []));
    list.push(s);
  }
  return { get: (name) => m.get(name) ?? [] };
}
