// The one settings table. The command-line parser, validation, --help, --check-config and the docs
// all read it, so they cannot drift apart. Defaults are Gunicorn's (and, for the exporter, those of
// the Python Gunicorn Prometheus Exporter).

import os from 'node:os';
import type { Settings, SettingKey } from './types.js';
import { BIND_FORMS, tryParseBind } from './bind.js';
import { envValue, fromString, fromValue, invalidValue, type ValueSpec } from './validate.js';

export type { SettingType } from './validate.js';

export interface SettingDef<K extends SettingKey = SettingKey> extends ValueSpec {
  key: K;
  /** Short and long flags; empty for the positional `app`. A bool `--x` also gets `--no-x`. */
  flags: readonly string[];
  /** A value, or a function of the environment for env-derived defaults (it validates what it reads). */
  default: Settings[K] | ((env: NodeJS.ProcessEnv) => Settings[K]);
  /** The environment variables the default reads, in order of preference. */
  envVars?: readonly string[];
  metavar: string;
  help: string;
  /** A relative path is made absolute against the working directory at resolve time ('-' excepted). */
  path?: boolean;
  /** How --help shows the default when the value itself would mislead. */
  defaultHelp?: string;
}

export type AnySettingDef = { [K in SettingKey]: SettingDef<K> }[SettingKey];

/** The REDIS_URL forms (redis-connection.ts parses them; the settings only check the scheme). */
const REDIS_URL_SCHEME = /^rediss?(\+sentinel|\+cluster)?:\/\//;
const REDIS_URL_HELP =
  'redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB] or redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]; rediss... for TLS';

const PORT: ValueSpec = { type: 'int', min: 0, max: 65535 };
/** The longest duration a Node timer holds: 2^31-1 ms (longer ones fire after 1 ms), in whole seconds. */
const MAX_SECONDS = 2147483;
const POS_INT: ValueSpec = { type: 'int', min: 1 };

function bindProblem(addr: string): string | undefined {
  const r = tryParseBind(addr);
  return typeof r === 'string' ? r : undefined;
}

/**
 * The Python Gunicorn Prometheus Exporter's TLS variables. PROMETHEUS_SSL_ENABLED=false turns them off (as its
 * YAML files' `ssl.enabled: false` does); otherwise a certificate and a key set turn HTTPS on, as there.
 */
function tlsEnv(env: NodeJS.ProcessEnv, name: string): string | null {
  if (envValue<boolean>(env, 'PROMETHEUS_SSL_ENABLED', { type: 'bool' }) === false) return null;
  return envValue<string>(env, name, { type: 'string' }) ?? null;
}

/** Its client CA variables count only with PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED=true: otherwise it requests no client certificate. */
function clientCaEnv(env: NodeJS.ProcessEnv, name: string): string | null {
  if (envValue<boolean>(env, 'PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED', { type: 'bool' }) !== true) return null;
  return tlsEnv(env, name);
}

export const SETTINGS: readonly AnySettingDef[] = [
  {
    key: 'app', flags: [], type: 'string', nullable: true, default: null, metavar: 'MODULE[:EXPORT]',
    help: 'The app to serve: a module path and its export (default export, then `app`).',
  },
  {
    key: 'bind', flags: ['-b', '--bind'], type: 'list', metavar: 'ADDR', check: bindProblem, expects: BIND_FORMS,
    envVars: ['PORT'], defaultHelp: '0.0.0.0:$PORT when $PORT is set, else 127.0.0.1:8000',
    default: (env) => {
      const port = envValue<number>(env, 'PORT', PORT);
      return port === undefined ? ['127.0.0.1:8000'] : [`0.0.0.0:${port}`];
    },
    help: `Address to listen on: ${BIND_FORMS}. Repeat to listen on several.`,
  },
  {
    key: 'workers', flags: ['-w', '--workers'], type: 'int', min: 1, metavar: 'N',
    envVars: ['WEB_CONCURRENCY', 'GUNICORN_WORKERS'],
    default: (env) =>
      envValue<number>(env, 'WEB_CONCURRENCY', POS_INT) ?? envValue<number>(env, 'GUNICORN_WORKERS', POS_INT) ?? 1,
    help: 'Number of worker processes.',
  },
  {
    key: 'workerClass', flags: ['-k', '--worker-class'], type: 'string', default: 'async', metavar: 'NAME',
    help: 'Worker type: sync, thread, async, a worker class name, or a module path exporting a worker class.',
  },
  {
    key: 'threads', flags: ['--threads'], type: 'int', min: 1, default: 1, metavar: 'N',
    help: 'Threads per worker for the thread worker.',
  },
  {
    key: 'workerConnections', flags: ['--worker-connections'], type: 'int', min: 1, default: 1000, metavar: 'N',
    help: 'Maximum simultaneous connections per worker, of every class (a worker at the cap stops accepting; more wait in the kernel backlog).',
  },
  {
    key: 'maxRequests', flags: ['--max-requests'], type: 'int', min: 0, default: 0, metavar: 'N',
    help: 'Restart a worker after this many requests; 0 disables.',
  },
  {
    key: 'maxRequestsJitter', flags: ['--max-requests-jitter'], type: 'int', min: 0, default: 0, metavar: 'N',
    help: 'Add a random 0..N to max-requests per worker, so workers do not restart together.',
  },
  {
    key: 'timeout', flags: ['-t', '--timeout'], type: 'number', min: 0, max: MAX_SECONDS, metavar: 'S', envVars: ['GUNICORN_TIMEOUT'],
    default: (env) => envValue<number>(env, 'GUNICORN_TIMEOUT', { type: 'number', min: 0, max: MAX_SECONDS }) ?? 30,
    help: 'Kill and replace a worker silent (or a sync request running) for this many seconds; 0 disables. Also the time a client has to send a request head (60 s with 0).',
  },
  {
    key: 'gracefulTimeout', flags: ['--graceful-timeout'], type: 'number', min: 0, default: 30, max: MAX_SECONDS, metavar: 'S',
    help: 'Seconds workers get to finish in-flight requests on stop or reload before they are killed.',
  },
  {
    key: 'keepalive', flags: ['--keep-alive'], type: 'number', min: 0, max: 299, metavar: 'S', envVars: ['GUNICORN_KEEPALIVE'],
    default: (env) => envValue<number>(env, 'GUNICORN_KEEPALIVE', { type: 'number', min: 0, max: 299 }) ?? 2,
    help: 'Seconds to wait for the next request on a keep-alive connection (at most 299: below Node\'s 300 s request timeout).',
  },
  {
    key: 'backlog', flags: ['--backlog'], type: 'int', min: 1, default: 2048, metavar: 'N',
    help: 'Maximum number of pending connections.',
  },
  {
    key: 'pidfile', flags: ['-p', '--pid'], type: 'string', nullable: true, path: true, default: null, metavar: 'FILE',
    help: 'Write the primary process id to this file.',
  },
  {
    key: 'accesslog', flags: ['--access-logfile'], type: 'string', nullable: true, path: true, default: null,
    metavar: 'FILE', defaultHelp: 'off',
    help: "Access log file; '-' means stdout.",
  },
  {
    key: 'accessLogFormat', flags: ['--access-logformat'], type: 'string', metavar: 'FORMAT',
    default: '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    help: 'Access log format, with Gunicorn\'s atoms.',
  },
  {
    key: 'errorlog', flags: ['--error-logfile'], type: 'string', path: true, default: '-', metavar: 'FILE',
    defaultHelp: '- (stderr)',
    help: "Error log file; '-' means stderr.",
  },
  {
    key: 'loglevel', flags: ['--log-level'], type: 'enum', choices: ['debug', 'info', 'warning', 'error', 'critical'],
    default: 'info', metavar: 'LEVEL',
    help: 'Error log level: debug, info, warning, error or critical.',
  },
  {
    key: 'procName', flags: ['-n', '--name'], type: 'string', default: 'promfork', metavar: 'NAME',
    help: 'Process title prefix.',
  },
  {
    key: 'chdir', flags: ['--chdir'], type: 'string', path: true, default: '.', metavar: 'DIR',
    defaultHelp: 'the current directory',
    help: 'Change to this directory before loading the app.',
  },
  {
    key: 'metricsPort', flags: ['--metrics-port'], ...PORT, metavar: 'N', envVars: ['PROMETHEUS_METRICS_PORT'],
    default: (env) => envValue<number>(env, 'PROMETHEUS_METRICS_PORT', PORT) ?? 9090,
    help: 'Port of the metrics server.',
  },
  {
    key: 'metricsBind', flags: ['--metrics-bind'], type: 'string', metavar: 'ADDR', envVars: ['PROMETHEUS_BIND_ADDRESS'],
    default: (env) => envValue<string>(env, 'PROMETHEUS_BIND_ADDRESS', { type: 'string' }) ?? '0.0.0.0',
    help: 'Address the metrics server listens on.',
  },
  {
    key: 'multiprocDir', flags: ['--multiproc-dir'], type: 'string', path: true, metavar: 'DIR',
    envVars: ['PROMETHEUS_MULTIPROC_DIR'],
    default: (env) => envValue<string>(env, 'PROMETHEUS_MULTIPROC_DIR', { type: 'string' }) ?? '/tmp/prometheus_multiproc',
    help: 'Directory where workers store their metrics.',
  },
  {
    key: 'metrics', flags: ['--metrics'], type: 'bool', default: true, metavar: '',
    help: 'Serve Prometheus metrics (--no-metrics: plain workers, no metrics server).',
  },
  {
    key: 'metricsNamespace', flags: ['--metrics-namespace'], type: 'string', default: 'gunicorn', metavar: 'NAME',
    check: (v: string) => (/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(v) ? undefined : 'a metric name prefix is [a-zA-Z_][a-zA-Z0-9_]*'),
    expects: 'a metric name prefix',
    help: 'Prefix of the metric names.',
  },
  {
    key: 'metricsFlushInterval', flags: ['--metrics-flush-interval'], type: 'number', min: 0.05, default: 1, max: MAX_SECONDS, metavar: 'S',
    help: 'Seconds between metric snapshots written by each worker (also on every scrape and at exit).',
  },
  {
    key: 'scrapeTimeout', flags: ['--scrape-timeout'], type: 'number', min: 0, default: 0.25, max: MAX_SECONDS, metavar: 'S',
    help: 'How long a scrape waits for workers to flush; slower workers are served from their last snapshot.',
  },
  {
    key: 'endpointCap', flags: ['--endpoint-cap'], type: 'int', min: 1, default: 100, metavar: 'N',
    help: 'Distinct endpoint label values per worker; further ones are counted as __other__.',
  },
  {
    key: 'metricsCertfile', flags: ['--metrics-certfile'], type: 'string', nullable: true, path: true, metavar: 'FILE',
    envVars: ['PROMETHEUS_SSL_CERTFILE'], default: (env) => tlsEnv(env, 'PROMETHEUS_SSL_CERTFILE'),
    help: 'TLS certificate (PEM) for the metrics server; with --metrics-keyfile it serves HTTPS.',
  },
  {
    key: 'metricsKeyfile', flags: ['--metrics-keyfile'], type: 'string', nullable: true, path: true, metavar: 'FILE',
    envVars: ['PROMETHEUS_SSL_KEYFILE'], default: (env) => tlsEnv(env, 'PROMETHEUS_SSL_KEYFILE'),
    help: 'TLS private key (PEM) for the metrics server.',
  },
  {
    key: 'metricsCaCerts', flags: ['--metrics-ca-certs'], type: 'string', nullable: true, path: true, metavar: 'FILE',
    envVars: ['PROMETHEUS_SSL_CLIENT_CAFILE'], default: (env) => clientCaEnv(env, 'PROMETHEUS_SSL_CLIENT_CAFILE'),
    defaultHelp: '$PROMETHEUS_SSL_CLIENT_CAFILE when $PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED is true, else none',
    help: 'CA certificates (PEM): the metrics server then requires a client certificate signed by them.',
  },
  {
    key: 'metricsCaPath', flags: ['--metrics-ca-path'], type: 'string', nullable: true, path: true, metavar: 'DIR',
    envVars: ['PROMETHEUS_SSL_CLIENT_CAPATH'], default: (env) => clientCaEnv(env, 'PROMETHEUS_SSL_CLIENT_CAPATH'),
    defaultHelp: '$PROMETHEUS_SSL_CLIENT_CAPATH when $PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED is true, else none',
    help: 'Directory of CA certificates (PEM files), with or instead of --metrics-ca-certs: client certificates are then required.',
  },
  {
    key: 'metricsBasicAuth', flags: ['--metrics-basic-auth'], type: 'string', nullable: true, secret: true,
    envVars: ['PROMFORK_METRICS_BASIC_AUTH'], metavar: 'USER:PASSWORD',
    check: (v: string) => (/^[^:]+:.+$/.test(v) ? undefined : 'expected USER:PASSWORD'), expects: 'USER:PASSWORD',
    default: (env) => envValue<string>(env, 'PROMFORK_METRICS_BASIC_AUTH', { type: 'string' }) ?? null,
    help: 'Require HTTP basic auth on the metrics server.',
  },
  {
    key: 'metricsBearerToken', flags: ['--metrics-bearer-token'], type: 'string', nullable: true, secret: true,
    envVars: ['PROMFORK_METRICS_BEARER_TOKEN'], metavar: 'TOKEN',
    default: (env) => envValue<string>(env, 'PROMFORK_METRICS_BEARER_TOKEN', { type: 'string' }) ?? null,
    help: 'Require `Authorization: Bearer TOKEN` on the metrics server.',
  },
  {
    key: 'redisEnabled', flags: ['--redis'], type: 'bool', metavar: '', envVars: ['REDIS_ENABLED'],
    default: (env) => envValue<boolean>(env, 'REDIS_ENABLED', { type: 'bool' }) ?? false,
    help: 'Store metric snapshots in Redis instead of the directory (no files are created).',
  },
  {
    key: 'redisHost', flags: ['--redis-host'], type: 'string', metavar: 'HOST', envVars: ['REDIS_HOST'],
    default: (env) => envValue<string>(env, 'REDIS_HOST', { type: 'string' }) ?? 'localhost',
    help: 'Redis host; with --redis-sentinel-master the sentinels, with --redis-cluster seed nodes of the cluster, as HOST[:PORT][,HOST[:PORT]...].',
  },
  {
    key: 'redisPort', flags: ['--redis-port'], ...PORT, metavar: 'N', envVars: ['REDIS_PORT'],
    default: (env) => envValue<number>(env, 'REDIS_PORT', PORT) ?? 6379,
    help: 'Redis port (of the cluster nodes listed without one; sentinels default to 26379).',
  },
  {
    key: 'redisDb', flags: ['--redis-db'], type: 'int', min: 0, metavar: 'N', envVars: ['REDIS_DB'],
    default: (env) => envValue<number>(env, 'REDIS_DB', { type: 'int', min: 0 }) ?? 0,
    help: 'Redis database number (0 in a Redis Cluster).',
  },
  {
    key: 'redisKeyPrefix', flags: ['--redis-key-prefix'], type: 'string', metavar: 'PREFIX', envVars: ['REDIS_KEY_PREFIX'],
    check: (v: string) => (v !== '' && !/[{}]/.test(v) ? undefined : "must be non-empty, without '{' or '}'"),
    expects: "a non-empty prefix without '{' or '}'",
    default: (env) => envValue<string>(env, 'REDIS_KEY_PREFIX', { type: 'string' }) ?? 'gunicorn',
    help: 'Prefix of every Redis key promfork writes.',
  },
  {
    key: 'redisPassword', flags: ['--redis-password'], type: 'string', nullable: true, secret: true, metavar: 'PASSWORD',
    envVars: ['REDIS_PASSWORD'],
    default: (env) => envValue<string>(env, 'REDIS_PASSWORD', { type: 'string' }) ?? null,
    help: 'Redis password, of the data nodes in every topology (prefer the environment variable: command lines are visible to other users).',
  },
  {
    key: 'redisUrl', flags: ['--redis-url'], type: 'string', nullable: true, secret: true, metavar: 'URL', envVars: ['REDIS_URL'],
    check: (v: string) => (REDIS_URL_SCHEME.test(v) ? undefined : `expected ${REDIS_URL_HELP}`),
    expects: 'a redis://, redis+sentinel:// or redis+cluster:// URL (rediss... for TLS)',
    default: (env) => envValue<string>(env, 'REDIS_URL', { type: 'string' }) ?? null,
    help: `Redis URL: ${REDIS_URL_HELP}. Wins over host, port, db and the sentinel and cluster settings, and over the password when it has one.`,
  },
  {
    key: 'redisSentinelMaster', flags: ['--redis-sentinel-master'], type: 'string', nullable: true, metavar: 'NAME',
    envVars: ['REDIS_SENTINEL_MASTER'],
    default: (env) => envValue<string>(env, 'REDIS_SENTINEL_MASTER', { type: 'string' }) ?? null,
    help: 'Use Redis Sentinel: the name of the master the sentinels monitor; --redis-host lists the sentinels.',
  },
  {
    key: 'redisSentinelPassword', flags: ['--redis-sentinel-password'], type: 'string', nullable: true, secret: true,
    metavar: 'PASSWORD', envVars: ['REDIS_SENTINEL_PASSWORD'],
    default: (env) => envValue<string>(env, 'REDIS_SENTINEL_PASSWORD', { type: 'string' }) ?? null,
    help: "The sentinels' own password (their requirepass), when they have one.",
  },
  {
    key: 'redisCluster', flags: ['--redis-cluster'], type: 'bool', metavar: '', envVars: ['REDIS_CLUSTER'],
    default: (env) => envValue<boolean>(env, 'REDIS_CLUSTER', { type: 'bool' }) ?? false,
    help: 'Use Redis Cluster: --redis-host lists seed nodes (any of its nodes; the others are discovered).',
  },
  {
    key: 'metricsInstance', flags: ['--metrics-instance'], type: 'string', metavar: 'NAME', envVars: ['PROMFORK_INSTANCE'],
    default: (env) => envValue<string>(env, 'PROMFORK_INSTANCE', { type: 'string' }) ?? os.hostname(),
    defaultHelp: '$PROMFORK_INSTANCE, else the host name',
    help: "This server's name in a shared store (Redis keys; the sidecar's server label), e.g. a pod name.",
  },
  {
    key: 'allInstances', flags: ['--all-instances'], type: 'bool', default: false, metavar: '',
    help: '`promfork exporter` only: serve every instance in the store, each series labelled server="NAME".',
  },
];

/** The environment variable holding more command-line options (Gunicorn's GUNICORN_CMD_ARGS). */
export const CMD_ARGS_ENV = 'PROMFORK_CMD_ARGS';

/** Command-line options that are not settings. */
export interface CliOptionDef {
  name: 'config' | 'checkConfig' | 'help' | 'version';
  flags: readonly string[];
  /** Empty for flags that take no value. */
  metavar: string;
  help: string;
}

export const CLI_OPTIONS: readonly CliOptionDef[] = [
  {
    name: 'config', flags: ['-c', '--config'], metavar: 'FILE',
    help: 'Config file (.js .mjs .cjs .json .yaml .yml). Default: ./promfork.config.js or ./promfork.config.mjs if present.',
  },
  { name: 'checkConfig', flags: ['--check-config'], metavar: '', help: 'Resolve and print the configuration, then exit.' },
  { name: 'help', flags: ['-h', '--help'], metavar: '', help: 'Show this help and exit.' },
  { name: 'version', flags: ['-v', '--version'], metavar: '', help: 'Show the version and exit.' },
];

export const SETTINGS_BY_KEY: ReadonlyMap<SettingKey, AnySettingDef> = new Map(SETTINGS.map((d) => [d.key, d]));

export function settingDef(key: SettingKey): AnySettingDef {
  const def = SETTINGS_BY_KEY.get(key);
  if (!def) throw new Error(`no setting ${key}`);
  return def;
}

/** The long flag that names a setting in messages (`--workers`), or the key for the positional app. */
export function mainFlag(def: AnySettingDef): string {
  return def.flags.find((f) => f.startsWith('--')) ?? def.key;
}

/**
 * A setting's default, reading (and validating) the environment for env-derived ones. A value read from a variable
 * passes the setting's own checks, exactly as the same value on the command line would.
 */
export function settingDefault<K extends SettingKey>(def: SettingDef<K>, env: NodeJS.ProcessEnv): Settings[K] {
  const d = def.default;
  const value = typeof d === 'function' ? d(env) : d;
  const name = def.envVars?.find((v) => env[v] !== undefined && env[v] !== '');
  if (name !== undefined && value !== null) {
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      const r = typeof item === 'string' ? fromString(def, item) : fromValue(def, item);
      if (!r.ok) throw invalidValue(`environment variable ${name}`, def, env[name], r.reason);
    }
  }
  // Copy arrays so a caller can never mutate the table's default.
  return (Array.isArray(value) ? [...value] : value) as Settings[K];
}

/** Every setting at its default (built-in, or read from `env`). */
export function defaultSettings(env: NodeJS.ProcessEnv): Settings {
  const out: Record<string, unknown> = {};
  for (const def of SETTINGS) out[def.key] = settingDefault(def as SettingDef, env);
  return out as unknown as Settings;
}
