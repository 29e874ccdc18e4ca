// promfork top on the sidecar with --all-instances (every series labelled server="NAME"): one block per server
// computed from that server's series only (worker_0 once per server, never summed), the master line and snapshot
// age per server, exact lines; --server filters, an unknown name is one error listing the servers found; without
// the label (a primary, or the sidecar serving one instance) the frame is the one-block frame of before.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ErrorCode } from '../../src/errors.js';
import { PromforkError } from '../../src/errors.js';
import { parseExposition } from '../../src/top/exposition-parser.js';
import { formatAge } from '../../src/top/format.js';
import { checkNamespace, computeFrame, serversOf, type Frame } from '../../src/top/frame.js';
import { parseTopArgs, TOP_USAGE } from '../../src/top/options.js';
import { renderFrame } from '../../src/top/render.js';
import { BOUNDS, snap, type SeatData } from './fixtures.js';

const URL = 'http://127.0.0.1:9091/metrics';

interface Seat extends SeatData {
  /** The sidecar's promfork_exporter_snapshot_age_seconds for this seat. */
  age?: number;
}

interface Server {
  seats: Record<string, Seat>;
  /** Absent: the primary's snapshot is not in the store yet (no master counters). */
  master?: { restarts: number; reasons?: Record<string, number>; signals?: Record<string, number> };
}

/**
 * What `promfork exporter` serves: each server's families with `server` as the first label (or no label with
 * `labelled` false: the sidecar serving one instance), then its own health metrics.
 */
function sidecar(servers: Record<string, Server>, opts: { labelled?: boolean; storeUp?: number } = {}): string {
  const labelled = opts.labelled ?? true;
  const l: string[] = [];
  const lb = (server: string, rest: string) => {
    const all = [labelled ? `server="${server}"` : '', rest].filter((x) => x !== '').join(',');
    return all === '' ? '' : `{${all}}`;
  };
  const each = (f: (server: string, s: Server) => void) => Object.entries(servers).forEach(([name, s]) => f(name, s));
  const seats = (f: (server: string, id: string, seat: Seat) => void) => each((server, s) => Object.entries(s.seats).forEach(([id, seat]) => f(server, id, seat)));

  l.push('# TYPE gunicorn_master_signals_total counter');
  each((server, s) => {
    for (const [signal, n] of Object.entries(s.master?.signals ?? {})) l.push(`gunicorn_master_signals_total${lb(server, `signal="${signal}"`)} ${n}`);
  });
  l.push('# TYPE gunicorn_master_worker_restart_reasons_total counter');
  each((server, s) => {
    for (const [reason, n] of Object.entries(s.master?.reasons ?? {})) l.push(`gunicorn_master_worker_restart_reasons_total${lb(server, `reason="${reason}"`)} ${n}`);
  });
  l.push('# TYPE gunicorn_master_worker_restarts_total counter');
  each((server, s) => {
    if (s.master) l.push(`gunicorn_master_worker_restarts_total${lb(server, '')} ${s.master.restarts}`);
  });
  for (const [name, key] of [['cpu_percent', 'cpu'], ['memory_bytes', 'memory']] as const) {
    l.push(`# TYPE gunicorn_worker_${name} gauge`);
    seats((server, id, seat) => {
      if (seat[key] !== undefined) l.push(`gunicorn_worker_${name}${lb(server, `worker_id="${id}"`)} ${seat[key]}`);
    });
  }
  l.push('# TYPE gunicorn_worker_failed_requests_total counter');
  seats((server, id, seat) => {
    for (const [endpoint, n] of Object.entries(seat.failures ?? {})) {
      l.push(`gunicorn_worker_failed_requests_total${lb(server, `worker_id="${id}",method="GET",endpoint="${endpoint}"`)} ${n}`);
    }
  });
  l.push('# TYPE gunicorn_worker_request_duration_seconds histogram');
  seats((server, id, seat) => {
    BOUNDS.forEach((le, i) => l.push(`gunicorn_worker_request_duration_seconds_bucket${lb(server, `worker_id="${id}",le="${le}"`)} ${seat.buckets[i]}`));
    l.push(`gunicorn_worker_request_duration_seconds_sum${lb(server, `worker_id="${id}"`)} 1.5`);
    l.push(`gunicorn_worker_request_duration_seconds_count${lb(server, `worker_id="${id}"`)} ${seat.buckets[BOUNDS.length - 1]}`);
  });
  l.push('# TYPE gunicorn_worker_requests_total counter');
  seats((server, id, seat) => l.push(`gunicorn_worker_requests_total${lb(server, `worker_id="${id}"`)} ${seat.requests}`));
  l.push('# TYPE gunicorn_worker_state gauge');
  seats((server, id, seat) => {
    if (seat.state) l.push(`gunicorn_worker_state${lb(server, `worker_id="${id}",state="${seat.state}",timestamp="1700000000"`)} 1`);
  });
  l.push('# TYPE gunicorn_worker_uptime_seconds gauge');
  seats((server, id, seat) => {
    if (seat.uptime !== undefined) l.push(`gunicorn_worker_uptime_seconds${lb(server, `worker_id="${id}"`)} ${seat.uptime}`);
  });
  // The sidecar's own: its snapshot ages always name the server, with --all-instances or not.
  l.push('# TYPE promfork_exporter_snapshot_age_seconds gauge');
  seats((server, id, seat) => {
    if (seat.age !== undefined) l.push(`promfork_exporter_snapshot_age_seconds{server="${server}",worker_id="${id}"} ${seat.age}`);
  });
  l.push('# TYPE promfork_exporter_store_up gauge', `promfork_exporter_store_up{store="redis"} ${opts.storeUp ?? 1}`);
  l.push('# TYPE promfork_worker_pid gauge');
  seats((server, id, seat) => {
    if (seat.pid) l.push(`promfork_worker_pid${lb(server, `worker_id="${id}"`)} ${seat.pid}`);
  });
  return `${l.join('\n')}\n`;
}

const BEFORE: Record<string, Server> = {
  'pod-a': {
    seats: {
      worker_0: { pid: 101, state: 'running', requests: 10, buckets: [5, 8, 10, 10, 10], failures: { '/a': 1 }, memory: 52428800, cpu: 1.5, uptime: 60, age: 0.2 },
      worker_1: { pid: 102, state: 'running', requests: 4, buckets: [4, 4, 4, 4, 4], memory: 50000000, cpu: 0, uptime: 60, age: 2.7 },
    },
    master: { restarts: 1, reasons: { killed: 1 }, signals: { ttin: 1 } },
  },
  'pod-b': {
    seats: {
      worker_0: { pid: 201, state: 'running', requests: 100, buckets: [100, 100, 100, 100, 100], memory: 104857600, cpu: 10, uptime: 3723, age: 3.1 },
    },
    master: { restarts: 0 },
  },
};
const AFTER: Record<string, Server> = {
  'pod-a': {
    seats: {
      // 8 more requests over 2 s (2 in (0, 0.25], 4 in (0.25, 0.5], 2 in (0.5, 1]), 3 more failures.
      worker_0: { pid: 101, state: 'running', requests: 18, buckets: [7, 14, 18, 18, 18], failures: { '/a': 2, '/b': 2 }, memory: 52428800, cpu: 12.25, uptime: 62, age: 1.2 },
      worker_1: { pid: 102, state: 'running', requests: 4, buckets: [4, 4, 4, 4, 4], memory: 50000000, cpu: 0, uptime: 62, age: 4.7 },
    },
    master: { restarts: 1, reasons: { killed: 1 }, signals: { ttin: 1 } },
  },
  'pod-b': {
    seats: {
      // Its own worker_0: 3 more requests (2 in (0.5, 1], 1 in (1, 2]), none failed.
      worker_0: { pid: 201, state: 'running', requests: 103, buckets: [100, 100, 102, 103, 103], memory: 104857600, cpu: 50, uptime: 3725, age: 0.5 },
    },
    master: { restarts: 0 },
  },
};

const OPTS = { namespace: 'gunicorn', url: URL };
const P99_A = 0.5 + 0.5 * ((0.99 * 8 - 6) / 2);

describe('computeFrame with a server label', () => {
  it('one block per server from its own series: seats, totals, master, snapshot age; worker_0 never summed', () => {
    const f = computeFrame(snap(sidecar(BEFORE), 1000), snap(sidecar(AFTER), 3000), OPTS);
    assert.equal(f.elapsedSeconds, 2);
    assert.deepEqual(f.servers?.found, ['pod-a', 'pod-b']);
    const [a, b] = f.servers!.blocks;
    assert.equal(f.servers!.blocks.length, 2);
    assert.deepEqual(a, {
      server: 'pod-a',
      workers: [
        {
          workerId: 'worker_0', pid: 101, state: 'running',
          requests: 18, requestRate: 4, p50: 0.375, p99: P99_A,
          failures: 4, failureRate: 1.5, memoryBytes: 52428800, cpuPercent: 12.25, uptimeSeconds: 62,
        },
        {
          workerId: 'worker_1', pid: 102, state: 'running',
          requests: 4, requestRate: 0, p50: null, p99: null,
          failures: 0, failureRate: 0, memoryBytes: 50000000, cpuPercent: 0, uptimeSeconds: 62,
        },
      ],
      total: { requests: 22, requestRate: 4, p50: 0.375, p99: P99_A, failures: 4, failureRate: 1.5 },
      master: { restarts: 1, reasons: [['killed', 1]], signals: [['ttin', 1]] },
      snapshotAgeSeconds: 4.7,
    });
    assert.deepEqual(b, {
      server: 'pod-b',
      workers: [
        {
          // rank 1.5 of 3 in (0.5, 1]: 0.5 + 0.5 * 1.5/2; rank 2.97 in (1, 2]: 1 + 0.97.
          workerId: 'worker_0', pid: 201, state: 'running',
          requests: 103, requestRate: 1.5, p50: 0.875, p99: 1 + 1 * ((0.99 * 3 - 2) / 1),
          failures: 0, failureRate: 0, memoryBytes: 104857600, cpuPercent: 50, uptimeSeconds: 3725,
        },
      ],
      total: { requests: 103, requestRate: 1.5, p50: 0.875, p99: 1 + 1 * ((0.99 * 3 - 2) / 1), failures: 0, failureRate: 0 },
      master: { restarts: 0, reasons: [], signals: [] },
      snapshotAgeSeconds: 0.5,
    });
    // The frame's own rows and totals: every block's rows in turn, the totals over both servers.
    assert.deepEqual(f.workers, [...a!.workers, ...b!.workers]);
    // 11 observations in the interval: [2, 6, 10, 11, 11]; rank 5.5 in (0.25, 0.5], rank 10.89 in (1, 2].
    assert.deepEqual(f.total, { requests: 125, requestRate: 5.5, p50: 0.25 + 0.25 * ((0.5 * 11 - 2) / 4), p99: 1 + 1 * ((0.99 * 11 - 10) / 1), failures: 4, failureRate: 1.5 });
    assert.deepEqual(f.master, { restarts: 1, reasons: [['killed', 1]], signals: [['ttin', 1]] });
  });

  it('--server keeps the servers named (the others are still listed as found)', () => {
    const f = computeFrame(snap(sidecar(BEFORE), 1000), snap(sidecar(AFTER), 3000), { ...OPTS, servers: ['pod-b'] });
    assert.deepEqual(f.servers?.found, ['pod-a', 'pod-b']);
    assert.deepEqual(f.servers?.blocks.map((b) => [b.server, b.workers.map((w) => w.pid), b.total.requests]), [['pod-b', [201], 103]]);
    assert.deepEqual(f.workers.map((w) => w.pid), [201]);
    assert.deepEqual([f.total.requests, f.total.requestRate, f.master.restarts], [103, 1.5, 0]);
    const both = computeFrame(null, snap(sidecar(AFTER), 0), { ...OPTS, servers: ['pod-b', 'pod-a'] });
    assert.deepEqual(both.servers?.blocks.map((b) => b.server), ['pod-a', 'pod-b']);
  });

  it('an unknown --server is one error listing the servers found; --server without the label is one error too', () => {
    const code: ErrorCode = 'PROMFORK_ERR_SCRAPE_FORMAT';
    const fails = (f: () => unknown, line: string) =>
      assert.throws(f, (err: unknown) => err instanceof PromforkError && err.code === code && err.toLine() === `Error: ${line} [${code}]`);
    fails(
      () => computeFrame(null, snap(sidecar(AFTER), 0), { ...OPTS, servers: ['pod-a', 'pod-c', 'web'] }),
      `--server pod-c,web: no such server at ${URL}; the servers found there: pod-a, pod-b`,
    );
    fails(
      () => computeFrame(null, snap(sidecar({ 'pod-a': AFTER['pod-a']! }, { labelled: false }), 0), { ...OPTS, servers: ['pod-a'] }),
      `--server pod-a: ${URL} has no server label (a promfork server's own endpoint, or promfork exporter without --all-instances); --server needs the endpoint of promfork exporter --all-instances`,
    );
  });

  it("a server whose primary snapshot is not in the store yet: no master, no seats (pids and states are the primary's)", () => {
    const fresh: Record<string, Server> = { ...AFTER, 'pod-c': { seats: { worker_0: { requests: 2, buckets: [2, 2, 2, 2, 2], age: 0.1 } } } };
    const f = computeFrame(null, snap(sidecar(fresh), 0), OPTS);
    assert.deepEqual(f.servers?.found, ['pod-a', 'pod-b', 'pod-c']);
    const c = f.servers!.blocks[2]!;
    assert.deepEqual([c.server, c.workers, c.master, c.total.requests, c.snapshotAgeSeconds], ['pod-c', [], null, 2, 0.1]);
  });

  it('without the label (the sidecar serving one instance): the one-block frame, though its snapshot ages name the server', () => {
    const one = { 'pod-a': AFTER['pod-a']! };
    const text = sidecar(one, { labelled: false });
    assert.match(text, /^promfork_exporter_snapshot_age_seconds\{server="pod-a",worker_id="worker_0"\} 1\.2$/m);
    assert.deepEqual(serversOf(parseExposition(text), 'gunicorn'), []);
    const f = computeFrame(snap(sidecar({ 'pod-a': BEFORE['pod-a']! }, { labelled: false }), 1000), snap(text, 3000), OPTS);
    assert.equal(f.servers, undefined);
    const labelled = computeFrame(snap(sidecar({ 'pod-a': BEFORE['pod-a']! }), 1000), snap(sidecar(one), 3000), OPTS);
    assert.deepEqual([f.workers, f.total, f.master], [labelled.servers!.blocks[0]!.workers, labelled.servers!.blocks[0]!.total, labelled.servers!.blocks[0]!.master]);
  });
});

describe('checkNamespace on promfork exporter', () => {
  const fails = (text: string, namespace: string, fix: string) =>
    assert.throws(
      () => checkNamespace(parseExposition(text), namespace, URL),
      (err: unknown) =>
        err instanceof PromforkError && err.toLine() === `Error: ${URL} has no ${namespace}_master_worker_restarts_total metric; ${fix} [PROMFORK_ERR_SCRAPE_FORMAT]`,
    );
  const own = (up: number) => sidecar({}, { storeUp: up });

  it("a server's workers before its master counters reach the store: accepted", () => {
    checkNamespace(parseExposition(sidecar({ 'pod-c': { seats: { worker_0: { requests: 2, buckets: [2, 2, 2, 2, 2] } } } })), 'gunicorn', URL);
  });

  it('its store down, no server in it, another namespace: one error each', () => {
    fails(own(0), 'gunicorn', "it is promfork exporter and cannot read its redis store (promfork_exporter_store_up 0): see the exporter's log");
    fails(
      own(1),
      'gunicorn',
      'it is promfork exporter and serves no live server from its store yet: start one on the same store (the exporter serves its --metrics-instance, or every instance with --all-instances)',
    );
    const workersOnly = sidecar({ 'pod-c': { seats: { worker_0: { requests: 2, buckets: [2, 2, 2, 2, 2] } } } });
    fails(workersOnly, 'myapp', 'the server uses --metrics-namespace gunicorn: run promfork top --namespace gunicorn');
  });
});

describe('renderFrame with a server label', () => {
  it('the servers found, then a block per server: its line with the master, its seats, its total; one column width', () => {
    const f = computeFrame(snap(sidecar(BEFORE), 1000), snap(sidecar(AFTER), 3000), OPTS);
    assert.deepEqual(renderFrame(f), [
      `promfork top - ${URL} - 03:04:05 - rates over 2.00s`,
      'servers: pod-a, pod-b',
      '',
      'server pod-a - master: 2 workers, restarts 1 (killed 1), signals: ttin 1 - snapshots up to 4.7s old',
      'WORKER    PID  STATE    REQUESTS  REQ/S    P50     P99  FAILED  FAIL/S        MEM    CPU  UPTIME',
      'worker_0  101  running        18    4.0  375ms   980ms       4     1.5   50.0 MiB  12.3%   1m02s',
      'worker_1  102  running         4    0.0      -       -       0     0.0   47.7 MiB   0.0%   1m02s',
      'total                         22    4.0  375ms   980ms       4     1.5',
      '',
      'server pod-b - master: 1 worker, restarts 0, signals: none - snapshots up to 0.5s old',
      'WORKER    PID  STATE    REQUESTS  REQ/S    P50     P99  FAILED  FAIL/S        MEM    CPU  UPTIME',
      'worker_0  201  running       103    1.5  875ms  1970ms       0     0.0  100.0 MiB  50.0%   1h02m',
      'total                        103    1.5  875ms  1970ms       0     0.0',
    ]);
  });

  it('--server: the others are named as found; a server not in the store yet; a failed scrape in the live view', () => {
    const fresh: Record<string, Server> = { ...AFTER, 'pod-c': { seats: { worker_0: { requests: 2, buckets: [2, 2, 2, 2, 2] } } } };
    const f = computeFrame(null, snap(sidecar(fresh), 0), { ...OPTS, servers: ['pod-c', 'pod-b'] });
    const error = new PromforkError('PROMFORK_ERR_SCRAPE_UNREACHABLE', `cannot reach ${URL}: connection refused by 127.0.0.1:9091; check it`);
    assert.deepEqual(renderFrame(f, { error: { error, time: new Date(2024, 0, 2, 3, 4, 9) }, intervalSeconds: 2 }), [
      `promfork top - ${URL} - 03:04:05 - rates from the next frame`,
      `error at 03:04:09: cannot reach ${URL}: connection refused by 127.0.0.1:9091; check it [PROMFORK_ERR_SCRAPE_UNREACHABLE]; retrying every 2s`,
      'servers: pod-a, pod-b, pod-c; showing pod-b, pod-c',
      '',
      'server pod-b - master: 1 worker, restarts 0, signals: none - snapshots up to 0.5s old',
      'WORKER    PID  STATE    REQUESTS  REQ/S  P50  P99  FAILED  FAIL/S        MEM    CPU  UPTIME',
      'worker_0  201  running       103      -    -    -       0       -  100.0 MiB  50.0%   1h02m',
      'total                        103      -    -    -       0       -',
      '',
      'server pod-c - master: not in the store yet',
      'WORKER    PID  STATE    REQUESTS  REQ/S  P50  P99  FAILED  FAIL/S        MEM    CPU  UPTIME',
      'total                          2      -    -    -       0       -',
      '(no live workers)',
    ]);
  });

  it('the sidecar serving one instance (no label): the frame of a primary, no block, no servers line', () => {
    const f: Frame = computeFrame(null, snap(sidecar({ 'pod-a': AFTER['pod-a']! }, { labelled: false }), 0), OPTS);
    assert.deepEqual(renderFrame(f), [
      `promfork top - ${URL} - 03:04:05 - rates from the next frame`,
      'master: 2 workers, restarts 1 (killed 1), signals: ttin 1',
      '',
      'WORKER    PID  STATE    REQUESTS  REQ/S  P50  P99  FAILED  FAIL/S       MEM    CPU  UPTIME',
      'worker_0  101  running        18      -    -    -       4       -  50.0 MiB  12.3%   1m02s',
      'worker_1  102  running         4      -    -    -       0       -  47.7 MiB   0.0%   1m02s',
      'total                         22      -    -    -       4       -',
    ]);
  });
});

describe('--server', () => {
  it('--help documents it', () => {
    assert.ok(TOP_USAGE.includes('\n  --server NAME           promfork exporter --all-instances: show only this server'), TOP_USAGE);
    assert.match(TOP_USAGE, /repeatable, or NAME,NAME/);
  });

  it('repeatable and comma lists, in order, duplicates dropped; default: every server', () => {
    assert.deepEqual(parseTopArgs([], {}).servers, []);
    assert.deepEqual(parseTopArgs(['--server', 'pod-b', '--server=pod-a, pod-c', '--server', 'pod-b'], {}).servers, ['pod-b', 'pod-a', 'pod-c']);
  });

  it('an empty name is one error', () => {
    for (const value of ['', 'pod-a,', ' , ']) {
      assert.throws(
        () => parseTopArgs(['--server', value], {}),
        (err: unknown) =>
          err instanceof PromforkError &&
          err.toLine() === `Error: --server ${JSON.stringify(value)} is invalid: expected a server name (the server label), or NAME,NAME [PROMFORK_ERR_INVALID_VALUE]`,
      );
    }
    assert.throws(
      () => parseTopArgs(['--server'], {}),
      (err: unknown) => err instanceof PromforkError && err.toLine() === 'Error: --server needs a value (see promfork top --help) [PROMFORK_ERR_MISSING_VALUE]',
    );
  });
});

describe('formatAge', () => {
  it('one decimal under a minute, then as an uptime', () => {
    assert.deepEqual([0, 0.04, 4.7, 59.94, 59.96, 125, null].map(formatAge), ['0.0s', '0.0s', '4.7s', '59.9s', '60.0s', '2m05s', '-']);
  });
});
