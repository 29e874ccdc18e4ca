// `promfork/hooks`: the default hooks and managers of the Python Gunicorn Prometheus Exporter, for config files.
export {
  defaultOnStarting,
  defaultWhenReady,
  defaultWorkerInt,
  defaultOnExit,
  defaultPostFork,
  redisWhenReady,
} from './hooks/defaults.js';
export {
  HookContext,
  HookManager,
  EnvironmentManager,
  MetricsServerManager,
  WorkerManager,
  ProcessManager,
  type HookLogger,
} from './hooks/managers.js';
