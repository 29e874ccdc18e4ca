// The hook managers of the Python Gunicorn Prometheus Exporter (HookManager, HookContext, EnvironmentManager, MetricsServerManager,
// WorkerManager, ProcessManager), with camelCase methods. The default hooks are built from them.

import type { Arbiter } from '../arbiter/arbiter.js';
import type { Settings } from '../config/types.js';
import type { Worker } from '../workers/base-worker.js';

export interface HookLogger {
  debug(msg: string, err?: unknown): void;
  info(msg: string, err?: unknown): void;
  warning(msg: string, err?: unknown): void;
  error(msg: string, err?: unknown): void;
}

const consoleLogger: HookLogger = {
  debug: () => {},
  info: (m) => console.error(m),
  warning: (m) => console.error(m),
  error: (m, e) => console.error(m, e ?? ''),
};

/** What a hook works on: the arbiter (primary hooks) and/or the worker (worker hooks). */
export class HookContext {
  readonly arbiter: Arbiter | null;
  readonly worker: Worker | null;
  readonly logger: HookLogger;

  constructor(opts: { arbiter?: Arbiter | null; worker?: Worker | null; logger?: HookLogger }) {
    this.arbiter = opts.arbiter ?? null;
    this.worker = opts.worker ?? null;
    this.logger = opts.logger ?? this.arbiter?.log ?? this.worker?.log ?? consoleLogger;
  }
}

/** Runs hook code safely: an exception is logged and reported as `false`, never thrown. */
export class HookManager {
  constructor(private readonly logger: HookLogger = consoleLogger) {}

  async safeExecute(fn: (...args: any[]) => unknown, ...args: unknown[]): Promise<boolean> {
    try {
      await fn(...args);
      return true;
    } catch (err) {
      const logger = args[0] instanceof HookContext ? args[0].logger : this.logger;
      logger.error(`Hook ${fn.name || '(anonymous)'} failed`, err);
      return false;
    }
  }
}

/** Publishes the resolved settings (CLI included) as the environment variables the Python exporter's users read. */
export class EnvironmentManager {
  constructor(private readonly logger: HookLogger = consoleLogger) {}

  updateFromCli(cfg: Settings, env: NodeJS.ProcessEnv = process.env): void {
    const values: Record<string, string> = {
      GUNICORN_WORKERS: String(cfg.workers),
      GUNICORN_BIND: cfg.bind.join(','),
      GUNICORN_WORKER_CLASS: cfg.workerClass,
      PROMETHEUS_MULTIPROC_DIR: cfg.multiprocDir,
      PROMETHEUS_METRICS_PORT: String(cfg.metricsPort),
      PROMETHEUS_BIND_ADDRESS: cfg.metricsBind,
    };
    for (const [name, value] of Object.entries(values)) {
      if (env[name] !== value) this.logger.debug(`env ${name}=${value}`);
      env[name] = value;
    }
  }
}

/** The metrics server of the primary: set up (store, collector) then start; both idempotent. */
export class MetricsServerManager {
  constructor(
    private readonly arbiter: Arbiter,
    private readonly logger: HookLogger = arbiter.log,
  ) {}

  /** Returns [port, collector] when metrics are enabled, else null (as the Python exporter's `(port, registry)`). */
  setupServer(): [number, unknown] | null {
    const exporter = this.arbiter.exporter;
    if (!exporter) {
      this.logger.debug('metrics are disabled (--no-metrics): no metrics server');
      return null;
    }
    exporter.setup();
    return [this.arbiter.cfg.metricsPort, exporter.collector];
  }

  async startServer(): Promise<boolean> {
    const exporter = this.arbiter.exporter;
    if (!exporter) return false;
    await exporter.startServer();
    return exporter.server !== null;
  }

  async stopServer(): Promise<void> {
    await this.arbiter.exporter?.stop();
  }
}

/** Worker-side: persist a worker's metrics now, and stop it gracefully. */
export class WorkerManager {
  constructor(private readonly logger: HookLogger = consoleLogger) {}

  async updateMetrics(worker: Worker): Promise<boolean> {
    const instrumentation = worker.instrumentation;
    if (!instrumentation) return false; // a worker without metrics
    const ok = await instrumentation.flush();
    if (!ok) this.logger.warning(`worker ${worker.pid}: metrics snapshot not persisted`);
    return ok;
  }

  shutdownWorker(worker: Worker): void {
    worker.alive = false;
  }
}

/** Primary-side: make sure no worker process outlives the primary. */
export class ProcessManager {
  constructor(private readonly logger: HookLogger = consoleLogger) {}

  cleanupProcesses(arbiter: Arbiter): number {
    let killed = 0;
    for (const w of arbiter.workers.values()) {
      if (w.pid > 0 && w.kill('SIGKILL')) {
        killed++;
        this.logger.warning(`killed leftover worker ${w.pid}`);
      }
    }
    return killed;
  }
}
