// The default hooks of the Python Gunicorn Prometheus Exporter. The arbiter always runs them (after the user's hook of the same name, and
// they are idempotent). The arbiter prepares the store before onStarting, starts the metrics server after
// whenReady and stops it after onExit itself, at fixed points, so a config file that defines its own hooks can
// never leave the metrics server unstarted (docs/design.md, pitfall 14: a silent empty /metrics); the exporter
// parts of defaultOnStarting, defaultWhenReady and defaultOnExit are therefore no-ops, kept for API compatibility.

import type { Arbiter } from '../arbiter/arbiter.js';
import type { Hooks } from '../config/types.js';
import type { Worker, ArbiterRef } from '../workers/base-worker.js';
import { EnvironmentManager, HookContext, HookManager, ProcessManager, WorkerManager } from './managers.js';

/** Primary, at start: logs the store (the arbiter prepared it before onStarting; an unsafe one stopped the start). */
export async function defaultOnStarting(arbiter: Arbiter): Promise<void> {
  const ctx = new HookContext({ arbiter });
  if (!arbiter.exporter) return;
  const cfg = arbiter.cfg;
  ctx.logger.debug(`metrics store: ${cfg.redisEnabled ? `redis ${cfg.redisHost}:${cfg.redisPort}` : cfg.multiprocDir}`);
}

/** Primary, once listening: nothing (the arbiter starts the metrics server right after whenReady). */
export async function defaultWhenReady(_arbiter: Arbiter): Promise<void> {}

/**
 * Primary, once listening, for Redis configurations: a check that the Redis store is enabled and reachable,
 * logged either way (the metrics server runs regardless, started by the arbiter; the store reconnects by itself).
 */
export async function redisWhenReady(arbiter: Arbiter): Promise<void> {
  await defaultWhenReady(arbiter);
  const ctx = new HookContext({ arbiter });
  if (!arbiter.cfg.redisEnabled) {
    ctx.logger.warning('redisWhenReady: REDIS_ENABLED is not true, metrics use the directory store');
    return;
  }
  const { RedisStorageManager } = await import('../redis.js');
  const manager = new RedisStorageManager(arbiter.cfg, arbiter.log);
  await manager.setup(arbiter.pid);
  await manager.teardown();
}

/** Worker, on INT/QUIT: persist its metrics before it goes. */
export async function defaultWorkerInt(worker: Worker): Promise<void> {
  const ctx = new HookContext({ worker });
  const manager = new WorkerManager(ctx.logger);
  await new HookManager(ctx.logger).safeExecute(() => manager.updateMetrics(worker));
  manager.shutdownWorker(worker);
}

/** Primary, at exit: make sure no worker is left (the arbiter stops the metrics server right after onExit). */
export async function defaultOnExit(arbiter: Arbiter): Promise<void> {
  new ProcessManager(arbiter.log).cleanupProcesses(arbiter);
}

/** Worker, after fork: publish the resolved settings (CLI included) in the environment. */
export async function defaultPostFork(_arbiter: ArbiterRef | Arbiter, worker: Worker): Promise<void> {
  new EnvironmentManager(worker.log).updateFromCli(worker.cfg);
}

const DEFAULTS = {
  onStarting: defaultOnStarting,
  whenReady: defaultWhenReady,
  workerInt: defaultWorkerInt,
  onExit: defaultOnExit,
  postFork: defaultPostFork,
} as const;

/** The user's hooks, each followed by the default of the same name when metrics are on. */
export function withDefaultHooks(hooks: Hooks, metrics: boolean): Hooks {
  if (!metrics) return hooks;
  const out: Hooks = { ...hooks };
  for (const [name, fallback] of Object.entries(DEFAULTS) as [keyof typeof DEFAULTS, (...a: any[]) => unknown][]) {
    const user = hooks[name] as ((...a: any[]) => unknown) | undefined;
    // Its examples assign the default itself (`whenReady = defaultWhenReady`): run it once.
    if (!user || user === fallback) {
      (out as Record<string, unknown>)[name] = fallback;
    } else {
      // The default runs even when the user's hook throws (whose error the caller then logs).
      (out as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        try {
          await user(...args);
        } finally {
          await fallback(...args);
        }
      };
    }
  }
  return out;
}
