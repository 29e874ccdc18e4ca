// The resolved configuration. `Settings` is plain data (it crosses to workers as JSON);
// hooks are functions and stay in the process that loaded the config file.

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';

export interface Settings {
  /** MODULE[:EXPORT] of the app; from the command line's positional argument or the config file's `app`. */
  app: string | null;
  bind: string[];
  workers: number;
  workerClass: string;
  threads: number;
  workerConnections: number;
  maxRequests: number;
  maxRequestsJitter: number;
  timeout: number;
  gracefulTimeout: number;
  keepalive: number;
  backlog: number;
  pidfile: string | null;
  accesslog: string | null;
  accessLogFormat: string;
  errorlog: string;
  loglevel: LogLevel;
  procName: string;
  chdir: string;
  metricsPort: number;
  metricsBind: string;
  multiprocDir: string;
  metrics: boolean;
  /** Metric name prefix (`gunicorn`, as in the Python Gunicorn Prometheus Exporter). */
  metricsNamespace: string;
  /** Seconds between snapshot writes by each worker (also written on each scrape and at exit). */
  metricsFlushInterval: number;
  /** Seconds a scrape waits for workers to flush before serving their last snapshot. */
  scrapeTimeout: number;
  /** Distinct `endpoint` label values per worker before further ones become `__other__`. */
  endpointCap: number;
  metricsCertfile: string | null;
  metricsKeyfile: string | null;
  /** CA bundle: when set, the metrics server requires and verifies client certificates. */
  metricsCaCerts: string | null;
  /** Directory of CA certificates: with or instead of metricsCaCerts, client certificates are required. */
  metricsCaPath: string | null;
  /** `USER:PASSWORD` for HTTP basic auth on /metrics. */
  metricsBasicAuth: string | null;
  /** Bearer token required on /metrics. */
  metricsBearerToken: string | null;
  /** Store snapshots in Redis instead of the directory (REDIS_ENABLED). */
  redisEnabled: boolean;
  redisHost: string;
  redisPort: number;
  redisDb: number;
  redisKeyPrefix: string;
  redisPassword: string | null;
  /** redis://, redis+sentinel:// or redis+cluster:// URL (rediss... for TLS); wins over host, port, db, the mode settings and password. */
  redisUrl: string | null;
  /** Redis Sentinel: the master's name (redisHost lists the sentinels). */
  redisSentinelMaster: string | null;
  /** The sentinels' own password. */
  redisSentinelPassword: string | null;
  /** Redis Cluster (redisHost lists seed nodes). */
  redisCluster: boolean;
  /** This server's name in a shared store (Redis keys, the sidecar's `server` label): the host name by default. */
  metricsInstance: string;
  /** Sidecar exporter: serve every instance found in the store, each series labelled `server`. */
  allInstances: boolean;
}

export type SettingKey = keyof Settings;

/** Server hooks, with Gunicorn's meaning. Arbiter and worker objects are promfork's own (see docs). */
export interface Hooks {
  onStarting?: (arbiter: any) => unknown;
  onReload?: (arbiter: any) => unknown;
  whenReady?: (arbiter: any) => unknown;
  preFork?: (arbiter: any, worker: any) => unknown;
  postFork?: (arbiter: any, worker: any) => unknown;
  postWorkerInit?: (worker: any) => unknown;
  workerInt?: (worker: any) => unknown;
  workerAbort?: (worker: any) => unknown;
  preRequest?: (worker: any, req: any) => unknown;
  postRequest?: (worker: any, req: any, res: any) => unknown;
  childExit?: (arbiter: any, worker: any) => unknown;
  workerExit?: (arbiter: any, worker: any) => unknown;
  nworkersChanged?: (arbiter: any, newValue: number, oldValue: number | null) => unknown;
  onExit?: (arbiter: any) => unknown;
  /** Not a Gunicorn hook: computes the `endpoint` label of a request (return null for the default). */
  endpointLabel?: (req: any) => string | null | undefined;
}

export type HookName = keyof Hooks;

export const HOOK_NAMES: readonly HookName[] = [
  'onStarting',
  'onReload',
  'whenReady',
  'preFork',
  'postFork',
  'postWorkerInit',
  'workerInt',
  'workerAbort',
  'preRequest',
  'postRequest',
  'childExit',
  'workerExit',
  'nworkersChanged',
  'onExit',
  'endpointLabel',
];

export interface Config {
  settings: Settings;
  hooks: Hooks;
  /** Absolute path of the config file that was read, or null. */
  configFile: string | null;
  /** The command-line arguments this config was resolved from (re-used on HUP). */
  argv: string[];
  /** Lines the primary logs once as warnings: keys of the config file that promfork ignores, and why. */
  notices?: string[];
}
