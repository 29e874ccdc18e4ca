// Gunicorn's access-log format (glogging.py `atoms`) for node:http. The format is Python %-formatting over a
// mapping: `%(h)s`, `%({x-request-id}i)s`, `%%`. It is compiled once into a list of parts.

import type http from 'node:http';
import { utcOffset } from './logger.js';

export const DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"';

export interface AccessInfo {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** Wall clock when the request started (the `t` atom). */
  startTime: Date;
  /** Monotonic request time, e.g. from `process.hrtime.bigint()` differences. */
  durationNs: bigint | number;
  bytesSent: number;
  pid: number;
}

export type AccessLogFormatter = (info: AccessInfo) => string;

type Atom = (info: AccessInfo) => string | number;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `[10/Oct/2000:13:55:36 -0700]`, local time. */
export function formatAccessTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `[${p(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${utcOffset(d)}]`
  );
}

function micros(ns: bigint | number): number {
  const us = typeof ns === 'bigint' ? Number(ns / 1000n) : Math.floor(ns / 1000);
  return us > 0 ? us : 0;
}

const protocol = (i: AccessInfo) => `HTTP/${i.req.httpVersion}`;
const orDash = (v: string | string[] | undefined) => (v === undefined ? '-' : Array.isArray(v) ? v.join(', ') : v);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function basicAuthUser(auth: string | undefined): string {
  if (auth === undefined || auth.slice(0, 5).toLowerCase() !== 'basic') return '-';
  const b64 = auth.slice(auth.indexOf(' ') + 1).trim();
  if (!auth.includes(' ') || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return '-';
  try {
    return utf8.decode(Buffer.from(b64, 'base64')).split(':', 1)[0] || '-';
  } catch {
    return '-'; // not UTF-8
  }
}

/** PATH_INFO and QUERY_STRING of a request target. The path is percent-decoded, as Gunicorn's PATH_INFO is. */
function splitTarget(url: string | undefined): { path: string; query: string } {
  let s = url ?? '';
  const hash = s.indexOf('#');
  if (hash >= 0) s = s.slice(0, hash);
  const q = s.indexOf('?');
  let path = q >= 0 ? s.slice(0, q) : s;
  const query = q >= 0 ? s.slice(q + 1) : '';
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path); // absolute-form target (proxy request)
  if (origin) path = path.slice(origin[0].length);
  try {
    path = decodeURIComponent(path);
  } catch {
    // malformed escape: log it raw
  }
  return { path, query };
}

function responseHeader(res: http.ServerResponse, name: string): string {
  const v = res.getHeader(name);
  if (v !== undefined) return Array.isArray(v) ? v.join(', ') : String(v);
  // Headers given only to writeHead(), and those Node adds (Date, Content-Length), are not kept by getHeader():
  // read them from the header block that was sent.
  const raw = (res as unknown as { _header?: unknown })._header;
  if (typeof raw !== 'string') return '-';
  const values: string[] = [];
  for (const line of raw.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) values.push(line.slice(colon + 1).trim());
  }
  return values.length > 0 ? values.join(', ') : '-';
}

function envVar(name: string): string {
  // Gunicorn lowercases environ names; try the name as written, then upper and lower case.
  return process.env[name] ?? process.env[name.toUpperCase()] ?? process.env[name.toLowerCase()] ?? '-';
}

const ATOMS = new Map<string, Atom>([
  ['h', (i) => i.req.socket?.remoteAddress ?? '-'],
  ['l', () => '-'],
  ['u', (i) => basicAuthUser(i.req.headers.authorization)],
  ['t', (i) => formatAccessTime(i.startTime)],
  ['r', (i) => `${i.req.method} ${i.req.url} ${protocol(i)}`],
  ['m', (i) => i.req.method ?? '-'],
  ['U', (i) => splitTarget(i.req.url).path],
  ['q', (i) => splitTarget(i.req.url).query],
  ['H', protocol],
  ['s', (i) => i.res.statusCode],
  ['B', (i) => i.bytesSent],
  ['b', (i) => (i.bytesSent > 0 ? i.bytesSent : '-')],
  ['f', (i) => orDash(i.req.headers.referer)],
  ['a', (i) => orDash(i.req.headers['user-agent'])],
  ['T', (i) => Math.floor(micros(i.durationNs) / 1e6)],
  ['M', (i) => Math.floor(micros(i.durationNs) / 1e3)],
  ['D', (i) => micros(i.durationNs)],
  ['L', (i) => {
    const us = micros(i.durationNs);
    return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
  }],
  ['p', (i) => `<${i.pid}>`],
]);

/** Single letters are case-sensitive (`h` vs `H`); `{name}x` keys are case-insensitive. Unknown: `-`. */
function resolveAtom(key: string): Atom {
  if (!key.startsWith('{')) return ATOMS.get(key) ?? (() => '-');
  const m = /^\{(.*)\}([ioeIOE])$/s.exec(key);
  if (!m) return () => '-';
  const name = m[1].toLowerCase();
  switch (m[2].toLowerCase()) {
    case 'i':
      return (i) => orDash(i.req.headers[name]);
    case 'o':
      return (i) => responseHeader(i.res, name);
    default:
      return () => envVar(m[1]);
  }
}

// Log-injection guard, applied to every string value: `"` becomes `\"` (as Gunicorn's SafeAtoms does) and, beyond
// Gunicorn, CR/LF become `\r`/`\n`, so that one request is always one line.
function escape(s: string): string {
  return /["\r\n]/.test(s) ? s.replace(/["\r\n]/g, (c) => (c === '"' ? '\\"' : c === '\n' ? '\\n' : '\\r')) : s;
}

// %% | %(key)[flags][width][.precision](s|d|i). Anything else is left as literal text rather than failing.
const TOKEN = /%(?:(%)|\(([^)]*)\)([-0]*)(\d*)(?:\.(\d+))?([sdi]))/g;

function part(key: string, flags: string, width: string, precision: string | undefined, conv: string): AccessLogFormatter {
  const atom = resolveAtom(key);
  const plain: AccessLogFormatter = (i) => {
    const v = atom(i);
    return typeof v === 'number' ? String(conv === 's' ? v : Math.trunc(v)) : escape(v);
  };
  if (!width && precision === undefined) return plain;
  const w = Number(width || 0);
  return (i) => {
    let s = plain(i);
    if (precision !== undefined && conv === 's') s = s.slice(0, Number(precision));
    if (flags.includes('-')) return s.padEnd(w);
    return s.padStart(w, flags.includes('0') && conv !== 's' && /^\d+$/.test(s) ? '0' : ' ');
  };
}

function compile(format: string): AccessLogFormatter {
  const parts: (string | AccessLogFormatter)[] = [];
  let last = 0;
  const literal = (s: string) => {
    if (typeof parts[parts.length - 1] === 'string') parts[parts.length - 1] += s;
    else if (s) parts.push(s);
  };
  for (const m of format.matchAll(TOKEN)) {
    literal(format.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) literal('%');
    else parts.push(part(m[2], m[3], m[4], m[5], m[6]));
  }
  literal(format.slice(last));
  return (info) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(info);
    return out;
  };
}

const cache = new Map<string, AccessLogFormatter>();

/** Compile a format once; the result is cached by format string. */
export function compileAccessLog(format: string): AccessLogFormatter {
  let fn = cache.get(format);
  if (fn === undefined) {
    if (cache.size >= 64) cache.clear(); // formats come from config: a bound, not an LRU
    fn = compile(format);
    cache.set(format, fn);
  }
  return fn;
}

export function formatAccessLog(format: string, info: AccessInfo): string {
  return compileAccessLog(format)(info);
}
