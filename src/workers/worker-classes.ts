// Worker class names (`-k`): the built-in classes by short or class name, or a module path that
// exports a worker class. The primary resolves the name once (it needs the class's `kind` to
// dispatch connections); the worker process loads the same id.

import path from 'node:path';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PromforkError } from '../errors.js';
import { parseAppSpec } from './app-loader.js';
import type { WorkerClass } from './base-worker.js';

type Loader = () => Promise<WorkerClass>;

const loadSync: Loader = async () => (await import('./sync-worker.js')).SyncWorker;
const loadAsync: Loader = async () => (await import('./async-worker.js')).AsyncWorker;
const loadThread: Loader = async () => (await import('./thread-worker.js')).ThreadWorker;

const BUILTIN: Record<string, Loader> = {
  SyncWorker: loadSync,
  AsyncWorker: loadAsync,
  ThreadWorker: loadThread,
  // The metrics are not in the class: the worker process attaches them (an Instrumentation) with metrics on.
  PrometheusWorker: loadSync,
  PrometheusAsyncWorker: loadAsync,
  PrometheusThreadWorker: loadThread,
};

/** The three kinds of built-in worker and their class names, plain and with metrics. */
type Kind = 'sync' | 'async' | 'thread';
const KINDS: Record<Kind, [plain: string, withMetrics: string]> = {
  sync: ['SyncWorker', 'PrometheusWorker'],
  async: ['AsyncWorker', 'PrometheusAsyncWorker'],
  thread: ['ThreadWorker', 'PrometheusThreadWorker'],
};

/** With --no-metrics a Prometheus class name means its plain class (the overhead baseline). */
const PLAIN: Record<string, string> = {
  PrometheusWorker: 'SyncWorker',
  PrometheusAsyncWorker: 'AsyncWorker',
  PrometheusThreadWorker: 'ThreadWorker',
};

const EVENT_LOOP = "Node's event loop, up to --worker-connections connections per worker";
const THREADS = 'the app on --threads worker_threads per worker';

/**
 * Worker class names a config carried over from Gunicorn or the Python Gunicorn Prometheus Exporter
 * holds, each served by its promfork counterpart. `what` names the original in the info line.
 */
const MIGRATED: Record<string, { kind: Kind; what: string }> = {
  // Gunicorn's short names (SUPPORTED_WORKERS) and its dotted class paths.
  gthread: { kind: 'thread', what: "Gunicorn's gthread worker" },
  eventlet: { kind: 'async', what: "Gunicorn's eventlet worker" },
  gevent: { kind: 'async', what: "Gunicorn's gevent worker" },
  gevent_wsgi: { kind: 'async', what: "Gunicorn's gevent_wsgi worker" },
  gevent_pywsgi: { kind: 'async', what: "Gunicorn's gevent_pywsgi worker" },
  tornado: { kind: 'async', what: "Gunicorn's tornado worker" },
  'gunicorn.workers.sync.SyncWorker': { kind: 'sync', what: "Gunicorn's sync worker" },
  'gunicorn.workers.gthread.ThreadWorker': { kind: 'thread', what: "Gunicorn's gthread worker" },
  'gunicorn.workers.geventlet.EventletWorker': { kind: 'async', what: "Gunicorn's eventlet worker" },
  'gunicorn.workers.ggevent.GeventWorker': { kind: 'async', what: "Gunicorn's gevent worker" },
  'gunicorn.workers.ggevent.GeventPyWSGIWorker': { kind: 'async', what: "Gunicorn's gevent pywsgi worker" },
  'gunicorn.workers.gtornado.TornadoWorker': { kind: 'async', what: "Gunicorn's tornado worker" },
  // The Python exporter's classes (gunicorn_prometheus_exporter[.plugin].NAME is reduced to NAME).
  PrometheusEventletWorker: { kind: 'async', what: "the Python exporter's eventlet worker" },
  PrometheusGeventWorker: { kind: 'async', what: "the Python exporter's gevent worker" },
  PrometheusTornadoWorker: { kind: 'async', what: "the Python exporter's tornado worker" },
};

const PYTHON_EXPORTER_PREFIXES = ['gunicorn_prometheus_exporter.plugin.', 'gunicorn_prometheus_exporter.'];
const PYTHON_EXPORTER_CLASSES: Record<string, Kind> = {
  PrometheusWorker: 'sync',
  PrometheusThreadWorker: 'thread',
  PrometheusEventletWorker: 'async',
  PrometheusGeventWorker: 'async',
  PrometheusTornadoWorker: 'async',
};

export interface ResolvedWorkerClass {
  /** A built-in class name, or an absolute module path with `:Export`. */
  id: string;
  cls: WorkerClass;
  /** For a name carried over from Gunicorn or the Python exporter: what it was and what serves it. */
  note?: string;
}

/** The `Using worker:` info line the primary logs once: which class serves the requested name. */
export function usingWorkerLine(wc: ResolvedWorkerClass): string {
  return `Using worker: ${wc.id}${wc.note ? ` (${wc.note})` : ''}`;
}

/** A built-in class id for `name` (and a note when the name is a migrated one), or null for a module path. */
export function builtinFor(name: string, metrics: boolean): { id: string; note?: string } | null {
  const pick = (kind: Kind) => KINDS[kind][metrics ? 1 : 0];
  if (name === 'sync' || name === 'async' || name === 'thread') return { id: pick(name) };
  if (name in BUILTIN) return { id: metrics ? name : PLAIN[name] ?? name };
  // `egg:gunicorn#gevent` is Gunicorn's entry-point form of a short name.
  const egg = /^egg:gunicorn#(\w+)$/.exec(name);
  const bare = egg ? egg[1]! : name;
  let migrated = MIGRATED[bare];
  if (!migrated) {
    const prefix = PYTHON_EXPORTER_PREFIXES.find((p) => bare.startsWith(p));
    const cls = prefix ? bare.slice(prefix.length) : undefined;
    const kind = cls !== undefined ? PYTHON_EXPORTER_CLASSES[cls] : undefined;
    if (kind) migrated = MIGRATED[cls!] ?? { kind, what: `the Python exporter's ${cls}` };
    else if (bare === 'sync') migrated = { kind: 'sync', what: "Gunicorn's sync worker" };
  }
  if (!migrated) return null;
  const id = pick(migrated.kind);
  const how = migrated.kind === 'async' ? EVENT_LOOP : migrated.kind === 'thread' ? THREADS : 'one request at a time per worker';
  return { id, note: `-k ${name}: ${migrated.what}, served by ${id}: ${how}` };
}

export async function resolveWorkerClass(name: string, cwd: string, metrics: boolean): Promise<ResolvedWorkerClass> {
  const builtin = builtinFor(name, metrics);
  if (builtin) return { ...builtin, cls: await loadWorkerClass(builtin.id) };
  const { module, exportName } = parseAppSpec(name);
  const file = path.resolve(cwd, module);
  if (!existsSync(file)) {
    throw new PromforkError(
      'PROMFORK_ERR_WORKER_CLASS',
      `--worker-class "${name}" is neither a built-in class (${[...Object.keys(KINDS), ...Object.keys(BUILTIN)].join(', ')}, or a class name of Gunicorn or the Python Gunicorn Prometheus Exporter) nor an existing module file (${file})`,
    );
  }
  const id = `${file}:${exportName ?? ''}`;
  return { id, cls: await loadWorkerClass(id) };
}

/** Load a resolved class id (the same class with metrics on or off: the worker process attaches the metrics). */
export async function loadWorkerClass(id: string): Promise<WorkerClass> {
  if (id in BUILTIN) return BUILTIN[id]!();
  return loadCustomClass(id);
}

async function loadCustomClass(id: string): Promise<WorkerClass> {
  const { module, exportName } = parseAppSpec(id);
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(module).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PromforkError(
      'PROMFORK_ERR_WORKER_CLASS',
      `--worker-class module ${module} failed to load: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const candidates = exportName ? [ns[exportName]] : [ns.default, ...Object.values(ns)];
  const cls = candidates.find(isWorkerClass);
  if (!cls) {
    throw new PromforkError(
      'PROMFORK_ERR_WORKER_CLASS',
      `--worker-class module ${module} exports no worker class${exportName ? ` named "${exportName}"` : ''}: export a class that extends SyncWorker, AsyncWorker or ThreadWorker from "promfork"`,
    );
  }
  return cls;
}

function isWorkerClass(value: unknown): value is WorkerClass {
  if (typeof value !== 'function') return false;
  const kind = (value as { kind?: unknown }).kind;
  const proto = (value as { prototype?: { run?: unknown; init?: unknown } }).prototype;
  return (kind === 'sync' || kind === 'async') && typeof proto?.run === 'function' && typeof proto.init === 'function';
}
