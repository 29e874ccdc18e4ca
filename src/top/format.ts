// Human units for `promfork top`: every cell of a frame is one of these, `-` when there is no value.

export const NONE = '-';

/** Resident memory in MiB, one decimal: `52.3 MiB`. */
export function formatMemory(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return NONE;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Uptime: `45s`, `12m05s`, `1h02m`, `3d04h`. */
export function formatUptime(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return NONE;
  const s = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** An age (of a snapshot): one decimal under a minute (`4.8s`), then as an uptime (`2m05s`). */
export function formatAge(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return NONE;
  return seconds < 60 ? `${Math.max(0, seconds).toFixed(1)}s` : formatUptime(seconds);
}

/** A latency in milliseconds with three significant digits or so: `0.42ms`, `7.50ms`, `25.0ms`, `250ms`, `12.5s`. */
export function formatLatency(seconds: number | null): string {
  if (seconds === null || Number.isNaN(seconds)) return NONE;
  if (seconds === Infinity) return '+Inf';
  const ms = seconds * 1000;
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms >= 100) return `${ms.toFixed(0)}ms`;
  if (ms >= 10) return `${ms.toFixed(1)}ms`;
  return `${ms.toFixed(2)}ms`;
}

/** A per-second rate, one decimal. */
export function formatRate(perSecond: number | null): string {
  if (perSecond === null || !Number.isFinite(perSecond)) return NONE;
  return perSecond.toFixed(1);
}

/** A count as an integer (counters of requests are integers; anything else is rounded). */
export function formatCount(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return NONE;
  return String(Math.round(n));
}

/** CPU percent of one core, one decimal: `12.5%`. */
export function formatPercent(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return NONE;
  return `${p.toFixed(1)}%`;
}

/** Local wall-clock time `HH:MM:SS`. */
export function formatClock(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds as given on the command line: `1s`, `0.5s`, `2.25s`. */
export function formatSeconds(s: number): string {
  return `${Number(s.toFixed(3))}s`;
}
