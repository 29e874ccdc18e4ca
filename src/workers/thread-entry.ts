// Entry point of one handler thread of a thread worker (thread-worker.ts). It loads the app itself
// (loadApp, as a worker process does), runs an http.Server that never listens and takes the connections the
// main thread pipes to it (thread-socket.ts), runs each request as the base worker does (500 on a throw or
// rejection, preRequest/postRequest hooks, access-log line) and reports every finished request to the main
// thread in one small message, which is where requests are counted (metrics, max-requests). It answers the
// main thread's metrics collection with the app's prom-client families of this thread.

import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { Hooks } from '../config/types.js';
import { loadHooksFromFile } from '../config/index.js';
import { isPromforkError } from '../errors.js';
import { callHookSync } from '../hooks/call-hook.js';
import { compileAccessLog } from '../logging/access-log.js';
import type { MetricFamily } from '../store/snapshot.js';
import { ERROR_PROPERTY } from '../metrics/endpoint.js';
import { loadApp, parseAppSpec, resolveAppModule, type RequestListener } from './app-loader.js';
import {
  COUNTER_REQUESTS,
  Outbox,
  counterInflight,
  toWireError,
  type MainToThread,
  type RequestReport,
  type ThreadData,
  type ThreadToMain,
  type WireError,
} from './thread-protocol.js';
import { BufferPool, PortSocket } from './thread-socket.js';
import { answerInternalError } from './internal-error.js';
import { closeIdleConnectionsSoon, httpServerOptions } from './http-options.js';

const data = workerData as ThreadData;
const port = parentPort!;
const s = data.settings;
const counters = new BigInt64Array(data.counters);
const INFLIGHT = counterInflight(data.slot);

const outbox = new Outbox<ThreadToMain>((msg, transfer) => port.postMessage(msg, transfer));
const post = (msg: ThreadToMain, transfer?: ArrayBuffer[]): void => outbox.post(msg, transfer);

const LEVELS = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 } as const;
type Level = keyof typeof LEVELS;
const minLevel = LEVELS[s.loglevel];

/** The error log of a thread: records go to the main thread's logger (one writer, reopened on USR1). */
const log = {
  isEnabledFor: (level: Level) => LEVELS[level] >= minLevel,
  write(level: Level, msg: string, err?: unknown): void {
    if (LEVELS[level] < minLevel) return;
    post({ t: 'log', level, msg, error: err === undefined ? undefined : toWireError(err) });
  },
  debug: (msg: string, err?: unknown) => log.write('debug', msg, err),
  info: (msg: string, err?: unknown) => log.write('info', msg, err),
  warning: (msg: string, err?: unknown) => log.write('warning', msg, err),
  error: (msg: string, err?: unknown) => log.write('error', msg, err),
  critical: (msg: string, err?: unknown) => log.write('critical', msg, err),
  exception: (msg: string, err: unknown) => log.write('error', msg, err),
};

let draining = false;
let dead = false;

/**
 * The `worker` that preRequest/postRequest hooks get in a thread (Gunicorn runs them in the pool thread):
 * the worker process's identity and settings, this thread's id, and the process's request count.
 */
const threadWorker = {
  pid: process.pid,
  ppid: data.ppid,
  age: data.age,
  seat: data.seat,
  cfg: s,
  log,
  arbiter: { pid: data.ppid, cfg: s },
  threadId,
  threadSlot: data.slot,
  maxRequests: data.maxRequests,
  get nr(): number {
    return Number(Atomics.load(counters, COUNTER_REQUESTS));
  },
  get alive(): boolean {
    return !draining;
  },
};

interface Inflight {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  start: bigint;
}

const inflight = new Set<Inflight>();
const sockets = new Map<number, PortSocket>();
const pool = new BufferPool();
let app: RequestListener;
let hooks: Hooks = {};
let registries: { getMetricsAsJSON(): Promise<unknown[]> }[] | null = null;
const forceClose = s.keepalive <= 0;
const debugRequests = log.isEnabledFor('debug');
const accessLine = s.accesslog ? compileAccessLog(s.accessLogFormat) : null;

const server = http.createServer(httpServerOptions(s));
// The server never listens; 'listening' starts Node's connection tracking, which closeIdleConnections()
// (the graceful drain) and the headers/request timeouts rely on.
server.emit('listening');
server.on('request', handleRequest);

function handleRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const n = Number(Atomics.add(counters, COUNTER_REQUESTS, 1n)) + 1;
  Atomics.add(counters, INFLIGHT, 1n);
  const entry: Inflight = { req, res, start: process.hrtime.bigint() };
  inflight.add(entry);
  if (forceClose || draining) res.shouldKeepAlive = false;
  // Max-requests is per process, decided when the last allowed request starts (as Gunicorn): this
  // response closes its connection, and the main thread stops taking connections.
  if (data.maxRequests > 0 && n >= data.maxRequests) {
    res.shouldKeepAlive = false;
    if (n === data.maxRequests) post({ t: 'maxed' });
  }
  const startWall = accessLine ? new Date() : null;
  const bytesAtStart = accessLine ? req.socket.bytesWritten : 0;
  let error: unknown = null;
  const fail = (err: unknown) => {
    if (error === null) error = err ?? new Error('request handler rejected');
    log.error(`Error handling request ${req.method} ${req.url}`, err);
    answerInternalError(res);
  };
  res.once('close', () => {
    if (dead) return; // reported by the crash report
    inflight.delete(entry);
    Atomics.sub(counters, INFLIGHT, 1n);
    const durationNs = process.hrtime.bigint() - entry.start;
    if (hooks.postRequest) callHookSync(log, hooks, 'postRequest', threadWorker, req, res);
    const report = describeRequest(req, res.statusCode, durationNs, error === null ? null : toWireError(error));
    if (accessLine && startWall) report.access = formatAccess(req, res, startWall, durationNs, bytesAtStart);
    post({ t: 'done', report });
    // A response committed as keep-alive before the stop is not followed by a close: the client may already be
    // sending its next request on it (answered with `Connection: close`); closeIdleConnectionsSoon ends it if not.
  });
  if (data.reportStarts) post({ t: 'start', method: req.method, url: req.url });
  if (hooks.preRequest) callHookSync(log, hooks, 'preRequest', threadWorker, req);
  else if (debugRequests) log.debug(`${req.method} ${req.url}`);
  try {
    const result = app(req, res) as Promise<unknown> | undefined;
    if (result && typeof result.then === 'function') result.then(undefined, fail);
  } catch (err) {
    fail(err);
  }
}

/** What the main thread counts; the endpoint label's inputs only for failed requests (they are rare). */
function describeRequest(
  req: http.IncomingMessage,
  status: number,
  durationNs: bigint,
  error: WireError | null,
): RequestReport {
  const report: RequestReport = { method: req.method, url: req.url, status, ns: Number(durationNs) };
  if (error === null && status < 500) return report;
  const r = req as http.IncomingMessage & {
    [ERROR_PROPERTY]?: unknown;
    promforkRoute?: unknown;
    route?: { path?: unknown };
    baseUrl?: unknown;
  };
  // The error a framework adapter handed over names the 5xx, as in worker-metrics.ts's observe().
  const handedOver = r[ERROR_PROPERTY];
  if (error !== null) report.error = error;
  else if (handedOver !== undefined && handedOver !== null) report.error = toWireError(handedOver);
  report.headers = { ...req.headers };
  if (typeof r.promforkRoute === 'string') report.promforkRoute = r.promforkRoute;
  if (r.route && typeof r.route.path === 'string') {
    report.route = { path: r.route.path, baseUrl: typeof r.baseUrl === 'string' ? r.baseUrl : undefined };
  }
  return report;
}

function formatAccess(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  startTime: Date,
  durationNs: bigint,
  bytesAtStart: number,
): string | undefined {
  try {
    const headerBytes = (res as unknown as { _header?: string })._header?.length ?? 0;
    const bytesSent = Math.max(0, req.socket.bytesWritten - bytesAtStart - headerBytes);
    return accessLine!({ req, res, startTime, durationNs, bytesSent, pid: process.pid });
  } catch (err) {
    log.error('access log failed', err);
    return undefined;
  }
}

// ---- messages from the main thread ----

let collecting: Promise<void> = Promise.resolve();

function onMessage(msg: MainToThread): void {
  switch (msg.t) {
    case 'data':
      sockets.get(msg.id)?.onData(msg.buf);
      return;
    case 'ack':
      if (msg.bufs) pool.give(msg.bufs);
      if (msg.n > 0) sockets.get(msg.id)?.onAck(msg.n);
      return;
    case 'conn': {
      const socket = new PortSocket(msg.id, msg.info, post, pool);
      sockets.set(msg.id, socket);
      socket.once('close', () => sockets.delete(msg.id));
      server.emit('connection', socket);
      return;
    }
    case 'end':
      sockets.get(msg.id)?.onEnd();
      return;
    case 'close':
      sockets.get(msg.id)?.onRemoteClose();
      return;
    case 'drain':
      drain();
      return;
    case 'collect': {
      // One collection at a time, so answers go out in order and a later one never shows less.
      const id = msg.id;
      collecting = collecting.then(async () => {
        let families: MetricFamily[] = [];
        try {
          families = await collectFamilies();
        } catch (err) {
          log.warning('metrics: cannot read the app registry of a thread', err);
        }
        post({ t: 'metrics', id, families });
      });
      return;
    }
  }
}

function drain(): void {
  if (draining) return;
  draining = true;
  for (const { res } of inflight) {
    if (!res.headersSent) res.shouldKeepAlive = false;
  }
  closeIdleConnectionsSoon(() => sockets.values());
}

async function collectFamilies(): Promise<MetricFamily[]> {
  registries ??= await appRegistries();
  return (await Promise.all(registries.map((r) => r.getMetricsAsJSON()))).flat() as MetricFamily[];
}

/** The thread's global prom-client registry, and the app's own copy of prom-client's when it has one. */
async function appRegistries(): Promise<{ getMetricsAsJSON(): Promise<unknown[]> }[]> {
  type Mod = { register?: { getMetricsAsJSON(): Promise<unknown[]> }; default?: { register?: Mod['register'] } };
  const ours = (await import('prom-client')) as Mod;
  const out = new Set([ours.register ?? ours.default!.register!]);
  if (s.app) {
    try {
      const appFile = resolveAppModule(parseAppSpec(s.app).module, s.chdir);
      const theirs = createRequire(appFile).resolve('prom-client');
      if (path.resolve(theirs) !== path.resolve(createRequire(import.meta.url).resolve('prom-client'))) {
        const mod = (await import(theirs)) as Mod;
        const reg = mod.register ?? mod.default?.register;
        if (reg) out.add(reg);
      }
    } catch {
      // the app does not use prom-client
    }
  }
  return [...out];
}

// ---- crash: report the requests that will never be answered, so they are counted once ----

function reportDying(error: WireError): void {
  if (dead) return;
  dead = true;
  const now = process.hrtime.bigint();
  const lost = [...inflight].map(({ req, start }) => describeRequest(req, 500, now - start, error));
  try {
    post({ t: 'dying', inflight: lost, error });
    outbox.flush();
  } catch {
    // the port is closed
  }
}

process.on('uncaughtException', (err) => {
  log.critical(`Uncaught exception in worker thread ${data.slot} (pid:${process.pid})`, err);
  reportDying(toWireError(err));
  process.exit(1);
});

process.on('exit', (code) => {
  reportDying({ name: 'WorkerThreadExit', message: `worker thread exited with code ${code}` });
});

// ---- boot ----

async function boot(): Promise<void> {
  try {
    if (data.requestHooks && data.configFile) hooks = await loadHooksFromFile(data.configFile);
    app = await loadApp(s.app ?? '', s.chdir);
    // Messages sent meanwhile (connections to a replacement thread) waited in the port until now.
    port.on('message', (msg: MainToThread | MainToThread[]) => {
      if (Array.isArray(msg)) for (const m of msg) onMessage(m);
      else onMessage(msg);
    });
    post({ t: 'ready' });
  } catch (err) {
    const cause = isPromforkError(err) && err.cause !== undefined ? toWireError(err.cause) : undefined;
    post({ t: 'boot-error', code: isPromforkError(err) ? err.code : null, error: toWireError(err), cause });
    outbox.flush();
  }
}

void boot();
