// Running user hooks. A hook that throws is logged and swallowed, except the worker boot hooks
// (postFork, postWorkerInit), which Gunicorn treats as a worker boot error (exit 3).

import { PromforkError } from '../errors.js';
import type { HookName, Hooks } from '../config/types.js';

interface HookLog {
  error(msg: string, err?: unknown): void;
}

const BOOT_HOOKS: ReadonlySet<HookName> = new Set(['postFork', 'postWorkerInit']);

export async function callHook(log: HookLog, hooks: Hooks, name: HookName, ...args: unknown[]): Promise<void> {
  const fn = hooks[name] as ((...a: unknown[]) => unknown) | undefined;
  if (!fn) return;
  try {
    await fn(...args);
  } catch (err) {
    if (BOOT_HOOKS.has(name)) {
      throw new PromforkError('PROMFORK_ERR_HOOK_BOOT', `hook ${name} failed: ${describe(err)}`, { cause: err });
    }
    log.error(`Exception in hook ${name}`, err);
  }
}

/** For hooks on the request path: never awaited; a returned promise's rejection is still logged. */
export function callHookSync(log: HookLog, hooks: Hooks, name: HookName, ...args: unknown[]): void {
  const fn = hooks[name] as ((...a: unknown[]) => unknown) | undefined;
  if (!fn) return;
  try {
    const result = fn(...args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(undefined, (err) => log.error(`Exception in hook ${name}`, err));
    }
  } catch (err) {
    log.error(`Exception in hook ${name}`, err);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
