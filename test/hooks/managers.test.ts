// The hook managers of the Python Gunicorn Prometheus Exporter and the composition of default hooks (pure logic).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EnvironmentManager, HookContext, HookManager, WorkerManager } from '../../src/hooks/managers.js';
import { defaultWhenReady, withDefaultHooks } from '../../src/hooks/defaults.js';
import { defaultSettings } from '../../src/config/settings.js';

function recordingLogger() {
  const lines: string[] = [];
  const log = (level: string) => (msg: string) => lines.push(`${level} ${msg}`);
  return { lines, logger: { debug: log('debug'), info: log('info'), warning: log('warning'), error: log('error') } };
}

describe('HookManager.safeExecute', () => {
  it('returns true when the function succeeds, awaiting it', async () => {
    const { logger } = recordingLogger();
    let ran = false;
    assert.equal(await new HookManager(logger).safeExecute(async () => { ran = true; }), true);
    assert.equal(ran, true);
  });

  it('returns false and logs when the function throws or rejects', async () => {
    const { lines, logger } = recordingLogger();
    const m = new HookManager(logger);
    assert.equal(await m.safeExecute(function failing() { throw new Error('x'); }), false);
    assert.equal(await m.safeExecute(async function rejecting() { throw new Error('y'); }), false);
    assert.deepEqual(lines, ['error Hook failing failed', 'error Hook rejecting failed']);
  });

  it('logs through the HookContext passed as first argument', async () => {
    const ctxLog = recordingLogger();
    const ctx = new HookContext({ logger: ctxLog.logger });
    assert.equal(await new HookManager().safeExecute((c: HookContext) => { throw new Error(String(c.arbiter)); }, ctx), false);
    assert.equal(ctxLog.lines.length, 1);
  });
});

describe('EnvironmentManager.updateFromCli', () => {
  it('publishes workers, bind, worker class and the exporter settings', () => {
    const env: NodeJS.ProcessEnv = {};
    const cfg = { ...defaultSettings({}), workers: 8, bind: ['0.0.0.0:9000', 'unix:/tmp/s'], workerClass: 'sync', metricsPort: 9191 };
    new EnvironmentManager(recordingLogger().logger).updateFromCli(cfg, env);
    assert.deepEqual(env, {
      GUNICORN_WORKERS: '8',
      GUNICORN_BIND: '0.0.0.0:9000,unix:/tmp/s',
      GUNICORN_WORKER_CLASS: 'sync',
      PROMETHEUS_MULTIPROC_DIR: '/tmp/prometheus_multiproc',
      PROMETHEUS_METRICS_PORT: '9191',
      PROMETHEUS_BIND_ADDRESS: '0.0.0.0',
    });
  });
});

describe('WorkerManager', () => {
  it('updateMetrics flushes a worker with metrics and reports false for one without', async () => {
    const { lines, logger } = recordingLogger();
    const m = new WorkerManager(logger);
    let flushed = 0;
    const withMetrics = { pid: 1, alive: true, instrumentation: { flush: async () => { flushed++; return true; } } };
    assert.equal(await m.updateMetrics(withMetrics as never), true);
    assert.equal(flushed, 1);
    assert.equal(await m.updateMetrics({ pid: 2, alive: true, instrumentation: null } as never), false);
    const failing = { pid: 3, alive: true, instrumentation: { flush: async () => false } };
    assert.equal(await m.updateMetrics(failing as never), false);
    assert.deepEqual(lines, ['warning worker 3: metrics snapshot not persisted']);
  });

  it('shutdownWorker stops the worker loop', () => {
    const w = { alive: true };
    new WorkerManager().shutdownWorker(w as never);
    assert.equal(w.alive, false);
  });
});

describe('withDefaultHooks', () => {
  it('adds the defaults when metrics are on, and nothing when off', () => {
    const on = withDefaultHooks({}, true);
    assert.deepEqual(Object.keys(on).sort(), ['onExit', 'onStarting', 'postFork', 'whenReady', 'workerInt']);
    assert.equal(on.whenReady, defaultWhenReady);
    assert.deepEqual(withDefaultHooks({}, false), {});
  });

  it("runs the user's hook, then the default; a hook that is the default itself runs once", async () => {
    const calls: string[] = [];
    const userReady = async () => { calls.push('user'); };
    const hooks = withDefaultHooks({ whenReady: userReady, onExit: defaultWhenReady as never }, true);
    assert.notEqual(hooks.whenReady, userReady);
    // onExit got a function that is not onExit's default: it is composed with the default.
    assert.notEqual(hooks.onExit, defaultWhenReady);
    const arbiter = { exporter: null, cfg: defaultSettings({}), log: recordingLogger().logger };
    await hooks.whenReady!(arbiter);
    assert.deepEqual(calls, ['user']);
    assert.equal(withDefaultHooks({ whenReady: defaultWhenReady }, true).whenReady, defaultWhenReady);
  });

  it("runs the default even when the user's hook throws, then rethrows for the caller to log", async () => {
    const calls: string[] = [];
    const hooks = withDefaultHooks({ postFork: () => { throw new Error('user postFork'); } }, true);
    const worker = { cfg: defaultSettings({}), log: { ...recordingLogger().logger, debug: () => calls.push('default ran') } };
    await assert.rejects(async () => hooks.postFork!(null, worker), /user postFork/);
    assert.ok(calls.length > 0);
  });
});
