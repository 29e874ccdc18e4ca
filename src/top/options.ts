// `promfork top` options: parsed and validated here, each mistake one PromforkError line.

import { readFileSync } from 'node:fs';
import { PromforkError } from '../errors.js';
import { closest } from '../config/suggest.js';
import type { FetchOptions } from './fetch.js';

export const TOP_USAGE = `Usage: promfork top [options]

A live view of a running promfork server, read from its metrics endpoint: one line per worker seat
(pid, state, requests, requests/s, p50 and p99 latency, failures, memory, CPU, uptime), the totals and the
master's restarts and signals. Refreshed every --interval seconds; q or Ctrl-C quits. From promfork exporter
--all-instances (series labelled server="NAME"), one block per server: its master line, its seats, its total.

Options:
  --url URL               the metrics endpoint (default: http://127.0.0.1:$PROMETHEUS_METRICS_PORT/metrics,
                          port 9090 when unset); HOST:PORT and a URL without a path mean /metrics
  --interval S            seconds between frames, and between the two scrapes of --once (default: 1)
  --once                  print one plain-text frame (rates over --interval) and exit
  --namespace NAME        the server's --metrics-namespace (default: gunicorn)
  --server NAME           promfork exporter --all-instances: show only this server (its --metrics-instance);
                          repeatable, or NAME,NAME (default: every server)
  --timeout S             deadline of each scrape (default: 5)
  --bearer-token TOKEN    send Authorization: Bearer TOKEN
  --basic-auth USER:PASS  send HTTP basic auth
  --header 'NAME: VALUE'  send this request header (repeatable)
  --insecure              https: do not verify the server's certificate (self-signed)
  --cacert FILE           https: verify the server with these PEM CA certificates
  --cert FILE, --key FILE https: client certificate and key (a server with --metrics-ca-certs)
  -h, --help              show this help
`;

export interface TopOptions {
  url: URL;
  intervalSeconds: number;
  once: boolean;
  namespace: string;
  /** --server: the servers to show (a sidecar with --all-instances); empty: all. */
  servers: string[];
  help: boolean;
  fetch: FetchOptions;
}

type Kind = 'flag' | 'value';
const FLAGS: Record<string, Kind> = {
  '--url': 'value',
  '--interval': 'value',
  '--once': 'flag',
  '--namespace': 'value',
  '--server': 'value',
  '--timeout': 'value',
  '--bearer-token': 'value',
  '--basic-auth': 'value',
  '--header': 'value',
  '--insecure': 'flag',
  '--cacert': 'value',
  '--cert': 'value',
  '--key': 'value',
  '--help': 'flag',
  '-h': 'flag',
};
const SUGGESTIONS = new Map(Object.keys(FLAGS).filter((f) => f.startsWith('--')).map((f) => [f.slice(2), f]));
const HELP_FIX = 'see promfork top --help';

export function parseTopArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): TopOptions {
  const given = new Map<string, string>();
  const headers: string[] = [];
  const servers: string[] = [];
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      throw new PromforkError('PROMFORK_ERR_EXTRA_ARGUMENT', `unexpected argument ${JSON.stringify(arg)}; give the endpoint with --url URL (${HELP_FIX})`);
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const kind = FLAGS[flag];
    if (kind === undefined) {
      const hint = flag.startsWith('--') ? closest(flag.slice(2), SUGGESTIONS) : undefined;
      throw new PromforkError('PROMFORK_ERR_UNKNOWN_OPTION', `unknown option ${flag} for promfork top; ${hint ? `did you mean ${hint}?` : HELP_FIX}`);
    }
    if (kind === 'flag') {
      if (eq >= 0) throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}; use ${flag} alone`);
      flags.add(flag === '-h' ? '--help' : flag);
      continue;
    }
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) {
      if (value === undefined || (value.startsWith('--') && FLAGS[value.split('=', 1)[0]!] !== undefined)) value = undefined;
      else i++;
    }
    if (value === undefined) throw new PromforkError('PROMFORK_ERR_MISSING_VALUE', `${flag} needs a value (${HELP_FIX})`);
    if (flag === '--header') headers.push(value);
    else if (flag === '--server') servers.push(value);
    else given.set(flag, value);
  }

  const invalid = (flag: string, value: string, expect: string) =>
    new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag} ${JSON.stringify(value)} is invalid: ${expect}`);
  const seconds = (flag: string, fallback: number, min: number): number => {
    const raw = given.get(flag);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < min) throw invalid(flag, raw, `expected a number of seconds >= ${min}`);
    return n;
  };

  const url = parseUrl(given.get('--url') ?? `http://127.0.0.1:${env.PROMETHEUS_METRICS_PORT || '9090'}/metrics`, given.has('--url') ? '--url' : 'PROMETHEUS_METRICS_PORT');
  const namespace = given.get('--namespace') ?? 'gunicorn';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(namespace)) throw invalid('--namespace', namespace, 'expected a metric name prefix such as gunicorn');

  const serverNames: string[] = [];
  for (const raw of servers) {
    const names = raw.split(',').map((n) => n.trim());
    if (names.some((n) => n === '')) throw invalid('--server', raw, 'expected a server name (the server label), or NAME,NAME');
    for (const n of names) if (!serverNames.includes(n)) serverNames.push(n);
  }

  const requestHeaders: Record<string, string> = {};
  for (const h of headers) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw invalid('--header', h, "expected 'NAME: VALUE'");
    requestHeaders[name] = h.slice(colon + 1).trim();
  }
  const hasAuthHeader = Object.keys(requestHeaders).some((k) => k.toLowerCase() === 'authorization');
  const auth = [given.has('--bearer-token') && '--bearer-token', given.has('--basic-auth') && '--basic-auth', hasAuthHeader && "--header 'Authorization: ...'"].filter(
    (x): x is string => typeof x === 'string',
  );
  if (auth.length > 1) throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${auth.join(' and ')} both set the Authorization header; give one`);
  const token = given.get('--bearer-token');
  if (token !== undefined) {
    if (token === '') throw invalid('--bearer-token', token, 'expected a token');
    requestHeaders.Authorization = `Bearer ${token}`;
  }
  const basic = given.get('--basic-auth');
  if (basic !== undefined) {
    if (!/^[^:]+:.+$/.test(basic)) throw invalid('--basic-auth', basic.replace(/:.*/, ':***'), 'expected USER:PASSWORD');
    requestHeaders.Authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  }

  if (given.has('--cert') !== given.has('--key')) {
    throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${given.has('--cert') ? '--cert' : '--key'} needs ${given.has('--cert') ? '--key' : '--cert'} too: a client certificate and its key`);
  }
  const file = (flag: string): Buffer | undefined => {
    const path = given.get(flag);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };

  return {
    url,
    intervalSeconds: seconds('--interval', 1, 0.1),
    once: flags.has('--once'),
    namespace,
    servers: serverNames,
    help: flags.has('--help'),
    fetch: {
      headers: requestHeaders,
      timeoutMs: seconds('--timeout', 5, 0.1) * 1000,
      insecure: flags.has('--insecure'),
      ca: file('--cacert'),
      cert: file('--cert'),
      key: file('--key'),
      credentials: auth.length > 0 || url.username !== '',
    },
  };
}

/** `http(s)://HOST:PORT/PATH`; `HOST:PORT` means http, and no path means /metrics. */
export function parseUrl(raw: string, flag = '--url'): URL {
  const text = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag} ${JSON.stringify(raw)} is invalid: expected http://HOST:PORT/metrics or https://...`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag} ${JSON.stringify(raw)} is invalid: only http:// and https:// are supported`);
  }
  if (url.pathname === '/' && !raw.endsWith('/')) url.pathname = '/metrics';
  return url;
}
