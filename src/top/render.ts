// A frame of `promfork top` as plain lines: a header, the master line, one row per worker seat and a total
// row, aligned in columns. From the sidecar with --all-instances: the header, the servers found, then a block
// per server (its line with the master's, its seats, its total), the columns aligned across the blocks.
// Pure: the same frame gives the same lines (the clock is the frame's time).

import { PromforkError } from '../errors.js';
import type { Frame, MasterInfo, ServerBlock, TotalRow, WorkerRow } from './frame.js';
import { NONE, formatAge, formatClock, formatCount, formatLatency, formatMemory, formatPercent, formatRate, formatSeconds, formatUptime } from './format.js';

export interface RenderOptions {
  /** Live mode: the last scrape failed (at `time`); shown under the header, above the last good rows. */
  error?: { error: PromforkError; time: Date } | null;
  /** Live mode: the refresh interval, for the error line. */
  intervalSeconds?: number;
}

interface Column {
  title: string;
  align: 'left' | 'right';
}

const COLUMNS: Column[] = [
  { title: 'WORKER', align: 'left' },
  { title: 'PID', align: 'right' },
  { title: 'STATE', align: 'left' },
  { title: 'REQUESTS', align: 'right' },
  { title: 'REQ/S', align: 'right' },
  { title: 'P50', align: 'right' },
  { title: 'P99', align: 'right' },
  { title: 'FAILED', align: 'right' },
  { title: 'FAIL/S', align: 'right' },
  { title: 'MEM', align: 'right' },
  { title: 'CPU', align: 'right' },
  { title: 'UPTIME', align: 'right' },
];

export function renderFrame(frame: Frame, opts: RenderOptions = {}): string[] {
  const rates = frame.elapsedSeconds === null ? 'rates from the next frame' : `rates over ${frame.elapsedSeconds.toFixed(2)}s`;
  const lines = [`promfork top - ${frame.url} - ${formatClock(frame.time)} - ${rates}`];
  if (opts.error) lines.push(errorLine(opts.error, opts.intervalSeconds));
  if (frame.servers) {
    lines.push(...renderServers(frame.servers.found, frame.servers.blocks));
    return lines;
  }
  lines.push(renderMaster(frame.master, frame.workers.length));
  lines.push('');
  const rows: string[][] = [COLUMNS.map((c) => c.title)];
  for (const w of frame.workers) rows.push(workerCells(w));
  rows.push(totalCells(frame.total));
  lines.push(...alignColumns(rows));
  if (frame.workers.length === 0) lines.push('(no live workers)');
  return lines;
}

/** The servers found (and those shown), then one block per server shown; one column width for all blocks. */
function renderServers(found: string[], blocks: ServerBlock[]): string[] {
  const shown = blocks.map((b) => b.server);
  const filtered = shown.length < found.length ? `; showing ${shown.join(', ')}` : '';
  const lines = [`servers: ${found.join(', ')}${filtered}`];
  const rows: string[][] = [];
  for (const b of blocks) {
    rows.push(COLUMNS.map((c) => c.title));
    for (const w of b.workers) rows.push(workerCells(w));
    rows.push(totalCells(b.total));
  }
  const aligned = alignColumns(rows);
  let at = 0;
  for (const b of blocks) {
    const master = b.master === null ? 'master: not in the store yet' : renderMaster(b.master, b.workers.length);
    const age = b.snapshotAgeSeconds === null ? '' : ` - snapshots up to ${formatAge(b.snapshotAgeSeconds)} old`;
    lines.push('', `server ${b.server} - ${master}${age}`);
    const n = b.workers.length + 2;
    lines.push(...aligned.slice(at, at + n));
    at += n;
    if (b.workers.length === 0) lines.push('(no live workers)');
  }
  return lines;
}

/**
 * Lines cut to a terminal's size, so none wraps and nothing scrolls: a redraw stays in place. Lines beyond
 * the height are replaced by a last line that says how many are hidden.
 */
export function fitScreen(lines: string[], width: number | undefined, height?: number): string[] {
  let out = lines;
  if (height !== undefined && height > 0 && out.length > height) {
    const hidden = out.length - (height - 1);
    out = [...out.slice(0, height - 1), `... ${hidden} more line${hidden === 1 ? '' : 's'}: enlarge the terminal`];
  }
  if (width === undefined || !(width > 0)) return out;
  return out.map((l) => (l.length > width ? l.slice(0, width) : l));
}

/** Live mode before any scrape worked: the header and the error. */
export function renderError(url: string, failure: { error: PromforkError; time: Date }, intervalSeconds?: number): string[] {
  return [`promfork top - ${url} - ${formatClock(failure.time)}`, errorLine(failure, intervalSeconds)];
}

function errorLine(failure: { error: PromforkError; time: Date }, intervalSeconds: number | undefined): string {
  const every = intervalSeconds === undefined ? '' : ` every ${formatSeconds(intervalSeconds)}`;
  return `error at ${formatClock(failure.time)}: ${failure.error.toLine().replace(/^Error: /, '')}; retrying${every}`;
}

function renderMaster(m: MasterInfo, seats: number): string {
  const reasons = m.reasons.length > 0 ? ` (${m.reasons.map(([r, n]) => `${r} ${formatCount(n)}`).join(', ')})` : '';
  const signals = m.signals.length > 0 ? m.signals.map(([s, n]) => `${s} ${formatCount(n)}`).join(', ') : 'none';
  return `master: ${seats} worker${seats === 1 ? '' : 's'}, restarts ${formatCount(m.restarts)}${reasons}, signals: ${signals}`;
}

function totalCells(t: TotalRow): string[] {
  return ['total', '', '', formatCount(t.requests), formatRate(t.requestRate), formatLatency(t.p50), formatLatency(t.p99), formatCount(t.failures), formatRate(t.failureRate), '', '', ''];
}

function workerCells(w: WorkerRow): string[] {
  return [
    w.workerId,
    w.pid === null ? NONE : String(w.pid),
    w.state ?? NONE,
    formatCount(w.requests),
    formatRate(w.requestRate),
    formatLatency(w.p50),
    formatLatency(w.p99),
    formatCount(w.failures),
    formatRate(w.failureRate),
    formatMemory(w.memoryBytes),
    formatPercent(w.cpuPercent),
    formatUptime(w.uptimeSeconds),
  ];
}

/** Rows of cells into lines: each column as wide as its widest cell, two spaces apart, no trailing spaces. */
function alignColumns(rows: string[][]): string[] {
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (COLUMNS[i]!.align === 'left' ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
