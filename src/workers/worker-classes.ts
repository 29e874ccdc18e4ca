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

/**
 * A metrics class: the plain class with the metrics mixin, built once. Only the one class the worker runs is loaded
 * (each plain class pulls its own modules: the thread worker its thread pool).
 */
function withMetricsOf(load: Loader): Loader {
  let cls: Promise<WorkerClass> | null = null;
  return () =>
    (cls ??= Promise.all([load(), import('../metrics/prometheus-mixin.js')]).then(([plain, { withMetrics }]) =>
      withMetrics(plain),
    ));
}

const loadSync: Loader = async () => (await import('./sync-worker.js')).SyncWorker;
const loadAsync: Loader = async () => (await import('./async-worker.js')).AsyncWorker;
const loadThread: Loader = async () => (await import('./thread-worker.js')).ThreadWorker;

const BUILTIN: Record<string, Loader> = {
  SyncWorker: loadSync,
  AsyncWorker: loadAsync,
  ThreadWorker: loadThread,
  PrometheusWorker: withMetricsOf(loadSync),
  PrometheusAsyncWorker: withMetricsOf(loadAsync),
  PrometheusThreadWorker: withMetricsOf(loadThread),
};

/** Short names, as Gunicorn's `-k sync`: with metrics on, the Prometheus classes. */
const SHORT: Record<string, [plain: string, withMetrics: string]> = {
  sync: ['SyncWorker', 'PrometheusWorker'],
  async: ['AsyncWorker', 'PrometheusAsyncWorker'],
  thread: ['ThreadWorker', 'PrometheusThreadWorker'],
  gthread: ['ThreadWorker', 'PrometheusThreadWorker'],
};

/** With --no-metrics a Prometheus class name means its plain class (the overhead baseline). */
const PLAIN: Record<string, string> = {
  PrometheusWorker: 'SyncWorker',
  PrometheusAsyncWorker: 'AsyncWorker',
  PrometheusThreadWorker: 'ThreadWorker',
};

export interface ResolvedWorkerClass {
  /** A built-in class name, or an absolute module path with `:Export`. */
  id: string;
  cls: WorkerClass;
}

export async function resolveWorkerClass(name: string, cwd: string, metrics: boolean): Promise<ResolvedWorkerClass> {
  const short = SHORT[name];
  let builtin = short ? short[metrics ? 1 : 0] : name in BUILTIN ? name : null;
  if (builtin && !metrics) builtin = PLAIN[builtin] ?? builtin;
  if (builtin) return { id: builtin, cls: await loadWorkerClass(builtin, metrics) };
  const { module, exportName } = parseAppSpec(name);
  const file = path.resolve(cwd, module);
  if (!existsSync(file)) {
    throw new PromforkError(
      'PROMFORK_ERR_WORKER_CLASS',
      `--worker-class "${name}" is neither a built-in class (${[...Object.keys(SHORT), ...Object.keys(BUILTIN)].join(', ')}) nor an existing module file (${file})`,
    );
  }
  const id = `${file}:${exportName ?? ''}`;
  return { id, cls: await loadWorkerClass(id, metrics) };
}

/** Load a resolved class id; with metrics on, a custom plain class gets the PrometheusMixin. */
export async function loadWorkerClass(id: string, metrics: boolean): Promise<WorkerClass> {
  if (id in BUILTIN) return BUILTIN[id]!();
  const cls = await loadCustomClass(id);
  if (!metrics) return cls;
  const { withMetrics } = await import('../metrics/prometheus-mixin.js');
  return withMetrics(cls);
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
