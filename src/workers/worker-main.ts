// A worker process (loaded by ./entry.ts once SIGUSR1 is held). Waits for its spec over IPC, then boots
// as Gunicorn's init_process does. Boot failures exit with 3 (worker boot error) or 4 (app load
// error), which make the primary halt.

import { EXIT_WORKER_BOOT, isPromforkError } from '../errors.js';
import { loadHooksFromFile } from '../config/index.js';
import type { Hooks } from '../config/types.js';
import { isMessage, type WorkerSpec } from '../ipc.js';
import { Logger } from '../logging/logger.js';
import { loadWorkerClass } from './worker-classes.js';
import { AppSourceError } from './app-loader.js';
import { withDefaultHooks } from '../hooks/defaults.js';

const onEarlyDisconnect = () => process.exit(0);

async function boot(spec: WorkerSpec): Promise<void> {
  process.off('disconnect', onEarlyDisconnect);
  const s = spec.settings;
  const log = new Logger({ errorlog: s.errorlog, loglevel: s.loglevel, accesslog: s.accesslog });
  process.title = `${s.procName}: worker [${spec.seat}]`;
  log.info(`Booting worker with pid: ${process.pid}`);
  try {
    process.chdir(s.chdir);
    const userHooks: Hooks = spec.configFile ? await loadHooksFromFile(spec.configFile) : {};
    const hooks = withDefaultHooks(userHooks, s.metrics);
    const WorkerClass = await loadWorkerClass(spec.workerClass);
    const worker = new WorkerClass(spec, hooks, log);
    if (s.metrics) await worker.instrument((await import('../metrics/prometheus-instrumentation.js')).prometheusInstrumentation);
    await worker.init();
    process.on('uncaughtException', (err) => {
      log.critical(`Uncaught exception in worker (pid:${process.pid})`, err);
      process.exit(1);
    });
    worker.run();
  } catch (err) {
    if (isPromforkError(err)) {
      log.error(err.toLine());
      // A user's mistake gets one line; an exception thrown by the app's own import keeps its stack.
      // The user's own code failed (app import, a boot hook): its stack helps, so it is shown.
      const userCode = err.code === 'PROMFORK_ERR_APP_IMPORT' || err.code === 'PROMFORK_ERR_HOOK_BOOT';
      if (err.cause instanceof AppSourceError) log.error(err.cause.excerpt);
      else if (userCode && err.cause instanceof Error && !isNotFound(err.cause)) log.error('Caused by:', err.cause);
      process.exit(err.exitCode);
    }
    log.critical('Exception while booting worker', err);
    process.exit(EXIT_WORKER_BOOT);
  }
}

process.once('message', (msg: unknown) => {
  if (isMessage(msg) && msg.t === 'spec') void boot((msg as unknown as { spec: WorkerSpec }).spec);
});
// The primary sends the spec right after fork; if the channel drops first, there is nothing to do.
process.once('disconnect', onEarlyDisconnect);

function isNotFound(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
