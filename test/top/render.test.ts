// The renderer of promfork top: exact lines for a given frame (aligned columns, human units, the master
// line, the error line of the live view), and the units one by one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PromforkError } from '../../src/errors.js';
import type { Frame } from '../../src/top/frame.js';
import { formatLatency, formatMemory, formatRate, formatUptime, formatPercent, formatClock, formatSeconds } from '../../src/top/format.js';
import { fitScreen, renderError, renderFrame } from '../../src/top/render.js';

const TIME = new Date(2024, 0, 2, 3, 4, 5); // local time 03:04:05 in any time zone

const FRAME: Frame = {
  url: 'http://127.0.0.1:9090/metrics',
  time: TIME,
  elapsedSeconds: 1.0042,
  workers: [
    {
      workerId: 'worker_0', pid: 4242, state: 'running', requests: 1234, requestRate: 12.34, p50: 0.0042, p99: 0.125,
      failures: 5, failureRate: 0.5, memoryBytes: 52428800 + 314573, cpuPercent: 3.25, uptimeSeconds: 3725,
    },
    {
      workerId: 'worker_1', pid: 987654, state: 'booting', requests: 0, requestRate: 0, p50: null, p99: null,
      failures: 0, failureRate: 0, memoryBytes: null, cpuPercent: null, uptimeSeconds: 4,
    },
  ],
  total: { requests: 1234, requestRate: 12.34, p50: 0.0042, p99: 0.125, failures: 5, failureRate: 0.5 },
  master: { restarts: 3, reasons: [['crash', 1], ['reload', 2]], signals: [['hup', 1], ['ttin', 2]] },
};

describe('renderFrame', () => {
  it('a header, the master line, then one aligned row per seat and the total', () => {
    assert.deepEqual(renderFrame(FRAME), [
      'promfork top - http://127.0.0.1:9090/metrics - 03:04:05 - rates over 1.00s',
      'master: 2 workers, restarts 3 (crash 1, reload 2), signals: hup 1, ttin 2',
      '',
      'WORKER       PID  STATE    REQUESTS  REQ/S     P50    P99  FAILED  FAIL/S       MEM   CPU  UPTIME',
      'worker_0    4242  running      1234   12.3  4.20ms  125ms       5     0.5  50.3 MiB  3.3%   1h02m',
      'worker_1  987654  booting         0    0.0       -      -       0     0.0         -     -      4s',
      'total                          1234   12.3  4.20ms  125ms       5     0.5',
    ]);
  });

  it('a first frame: no rates yet; no restarts, no signals, one worker', () => {
    const first: Frame = {
      ...FRAME,
      elapsedSeconds: null,
      workers: [{ ...FRAME.workers[0]!, requestRate: null, p50: null, p99: null, failureRate: null }],
      total: { ...FRAME.total, requestRate: null, p50: null, p99: null, failureRate: null },
      master: { restarts: 0, reasons: [], signals: [] },
    };
    assert.deepEqual(renderFrame(first), [
      'promfork top - http://127.0.0.1:9090/metrics - 03:04:05 - rates from the next frame',
      'master: 1 worker, restarts 0, signals: none',
      '',
      'WORKER     PID  STATE    REQUESTS  REQ/S  P50  P99  FAILED  FAIL/S       MEM   CPU  UPTIME',
      'worker_0  4242  running      1234      -    -    -       5       -  50.3 MiB  3.3%   1h02m',
      'total                        1234      -    -    -       5       -',
    ]);
  });

  it('no live worker', () => {
    const empty: Frame = { ...FRAME, workers: [], total: { requests: 0, requestRate: 0, p50: null, p99: null, failures: 0, failureRate: 0 } };
    assert.deepEqual(renderFrame(empty).slice(1), [
      'master: 0 workers, restarts 3 (crash 1, reload 2), signals: hup 1, ttin 2',
      '',
      'WORKER  PID  STATE  REQUESTS  REQ/S  P50  P99  FAILED  FAIL/S  MEM  CPU  UPTIME',
      'total                      0    0.0    -    -       0     0.0',
      '(no live workers)',
    ]);
  });

  it('live view: a failed scrape is shown under the header, above the last good rows', () => {
    const error = new PromforkError('PROMFORK_ERR_SCRAPE_UNREACHABLE', 'cannot reach http://127.0.0.1:9090/metrics: connection refused by 127.0.0.1:9090; check it');
    const failure = { error, time: new Date(2024, 0, 2, 3, 4, 9) };
    const lines = renderFrame(FRAME, { error: failure, intervalSeconds: 1 });
    assert.equal(lines[0], 'promfork top - http://127.0.0.1:9090/metrics - 03:04:05 - rates over 1.00s');
    assert.equal(
      lines[1],
      'error at 03:04:09: cannot reach http://127.0.0.1:9090/metrics: connection refused by 127.0.0.1:9090; check it [PROMFORK_ERR_SCRAPE_UNREACHABLE]; retrying every 1s',
    );
    assert.deepEqual(lines.slice(2), renderFrame(FRAME).slice(1));
    assert.deepEqual(renderError(FRAME.url, failure, 0.5), [
      'promfork top - http://127.0.0.1:9090/metrics - 03:04:09',
      'error at 03:04:09: cannot reach http://127.0.0.1:9090/metrics: connection refused by 127.0.0.1:9090; check it [PROMFORK_ERR_SCRAPE_UNREACHABLE]; retrying every 0.5s',
    ]);
  });

  it('fitScreen cuts lines to the terminal width and height', () => {
    assert.deepEqual(fitScreen(['abcdef', 'ab', ''], 4), ['abcd', 'ab', '']);
    assert.deepEqual(fitScreen(['abcdef'], undefined), ['abcdef']);
    assert.deepEqual(fitScreen(['1', '2', '3'], 80, 3), ['1', '2', '3']);
    assert.deepEqual(fitScreen(['1', '2', '3', '4', '5'], 80, 3), ['1', '2', '... 3 more lines: enlarge the terminal']);
    assert.deepEqual(fitScreen(['1', '2', '3', '4'], 12, 4), ['1', '2', '3', '4']);
    assert.deepEqual(fitScreen(['1', '2', '3', '4', '5'], 12, 4), ['1', '2', '3', '... 2 more l']);
  });
});

describe('units', () => {
  it('memory in MiB', () => {
    assert.equal(formatMemory(0), '0.0 MiB');
    assert.equal(formatMemory(52428800), '50.0 MiB');
    assert.equal(formatMemory(1610612736), '1536.0 MiB');
    assert.equal(formatMemory(null), '-');
  });
  it('uptime: seconds, minutes, hours, days', () => {
    assert.deepEqual([0, 59.9, 60, 125, 3599, 3600, 3725, 86399, 86400, 90061 + 3 * 86400].map(formatUptime), [
      '0s', '59s', '1m00s', '2m05s', '59m59s', '1h00m', '1h02m', '23h59m', '1d00h', '4d01h',
    ]);
    assert.equal(formatUptime(null), '-');
  });
  it('latency in ms, seconds beyond 10 s', () => {
    assert.deepEqual([0.00042, 0.0075, 0.025, 0.25, 2.5, 12.5, Infinity, null].map(formatLatency), [
      '0.42ms', '7.50ms', '25.0ms', '250ms', '2500ms', '12.5s', '+Inf', '-',
    ]);
  });
  it('rates, percents, clock, seconds', () => {
    assert.deepEqual([0, 0.04, 0.05, 1234.56, null].map(formatRate), ['0.0', '0.0', '0.1', '1234.6', '-']);
    assert.equal(formatPercent(99.95), '100.0%');
    assert.equal(formatClock(new Date(2024, 0, 2, 13, 5, 9)), '13:05:09');
    assert.deepEqual([1, 0.5, 2.25].map(formatSeconds), ['1s', '0.5s', '2.25s']);
  });
});
