// Config files in the Python Gunicorn Prometheus Exporter's YAML layout, read as they are:
//
//   exporter:
//     prometheus: { metrics_port, bind_address, multiproc_dir, ssl: { enabled, certfile, keyfile, client_cafile,
//                   client_capath, client_auth_required } }
//     gunicorn:   { workers, timeout, keepalive }
//     redis:      { enabled, host, port, db, password, key_prefix, ttl_seconds, ttl_disabled }
//     ssl:        { ...the same keys as prometheus.ssl: where its documentation puts them }
//     cleanup:    { db_files }
//
// Its loader (load_yaml_config) turns each key into an environment variable that is set only when the
// environment does not have it yet: the environment wins over the file. promfork does the same: the file's
// values become defaults under the real environment (`layoutEnvironment`), read through the same settings
// table as the environment itself, so PROMFORK_CMD_ARGS and the command line still win over both. Keys
// that mean nothing here are reported, one line each, by the primary (never silently dropped); keys the
// layout does not have are refused with their path, as promfork refuses unknown settings.

import { PromforkError } from '../errors.js';
import { SETTINGS_BY_KEY } from './settings.js';
import { closest } from './suggest.js';
import type { SettingKey } from './types.js';
import { fromString, fromValue, invalidValue, type ValueSpec } from './validate.js';

/** A key of the layout: the environment variable its loader sets and the promfork setting that reads it. */
interface Mapped {
  env: string;
  setting: SettingKey;
}
/** A key with no meaning in promfork: why, for the line that reports it. */
interface Ignored {
  ignored: string;
}
/** A boolean that decides whether other keys apply (ssl.enabled, ssl.client_auth_required, redis.enabled). */
interface Switch {
  env: string;
  switch: true;
}
type KeyRule = Mapped | Ignored | Switch;
interface Rules {
  [key: string]: KeyRule | Rules;
}

const SSL: Rules = {
  enabled: { env: 'PROMETHEUS_SSL_ENABLED', switch: true },
  certfile: { env: 'PROMETHEUS_SSL_CERTFILE', setting: 'metricsCertfile' },
  keyfile: { env: 'PROMETHEUS_SSL_KEYFILE', setting: 'metricsKeyfile' },
  client_cafile: { env: 'PROMETHEUS_SSL_CLIENT_CAFILE', setting: 'metricsCaCerts' },
  client_capath: { env: 'PROMETHEUS_SSL_CLIENT_CAPATH', setting: 'metricsCaPath' },
  client_auth_required: { env: 'PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED', switch: true },
};

const SECTIONS: Rules = {
  prometheus: {
    metrics_port: { env: 'PROMETHEUS_METRICS_PORT', setting: 'metricsPort' },
    bind_address: { env: 'PROMETHEUS_BIND_ADDRESS', setting: 'metricsBind' },
    multiproc_dir: { env: 'PROMETHEUS_MULTIPROC_DIR', setting: 'multiprocDir' },
    ssl: SSL,
  },
  gunicorn: {
    workers: { env: 'GUNICORN_WORKERS', setting: 'workers' },
    timeout: { env: 'GUNICORN_TIMEOUT', setting: 'timeout' },
    keepalive: { env: 'GUNICORN_KEEPALIVE', setting: 'keepalive' },
  },
  redis: {
    enabled: { env: 'REDIS_ENABLED', setting: 'redisEnabled' },
    host: { env: 'REDIS_HOST', setting: 'redisHost' },
    port: { env: 'REDIS_PORT', setting: 'redisPort' },
    db: { env: 'REDIS_DB', setting: 'redisDb' },
    password: { env: 'REDIS_PASSWORD', setting: 'redisPassword' },
    key_prefix: { env: 'REDIS_KEY_PREFIX', setting: 'redisKeyPrefix' },
    ttl_seconds: {
      ignored:
        "promfork's keys expire on their own: a live server refreshes them every 5 s with a 60 s TTL, so series neither vanish while it runs nor outlive it",
    },
    ttl_disabled: { ignored: "promfork's keys always expire once their server is gone (a dead server's series are not kept forever)" },
  },
  // Where its documentation (not its loader) puts the TLS keys.
  ssl: SSL,
  cleanup: {
    db_files: {
      ignored:
        'promfork always removes the files of its own dead runs at start and never touches other files (prometheus_client *.db files are not used)',
    },
  },
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSwitch = (r: KeyRule): r is Switch => 'switch' in r;
const isIgnored = (r: KeyRule): r is Ignored => 'ignored' in r;
const isRule = (r: KeyRule | Rules): r is KeyRule => 'env' in r || 'ignored' in r;

/** A file is in the Python exporter's layout when its top level has an `exporter` mapping. */
export function isPythonExporterLayout(data: Record<string, unknown>): boolean {
  return isRecord(data.exporter);
}

/** The file's `exporter` section, checked: what it sets, and what promfork reports about it. */
export interface PythonExporterLayout {
  file: string;
  /** Environment variable -> value, as its loader would set them (switches included). */
  values: Map<string, { path: string; value: string }>;
  /** Keys with no meaning here, with the reason. */
  ignored: { path: string; reason: string }[];
}

const BOOL: ValueSpec = { type: 'bool' };

/** The value as the environment variable's text, checked against the setting it feeds. */
function asEnvText(file: string, path: string, spec: ValueSpec, value: unknown): string {
  // Its loader writes str(value) into the environment: numbers may be quoted in its files, booleans may not.
  const r = typeof value === 'string' && spec.type !== 'string' && spec.type !== 'bool' ? fromString(spec, value) : fromValue(spec, value);
  if (!r.ok) throw invalidValue(`\`${path}\` in ${file}`, spec, value, r.reason, true);
  return String(r.value);
}

function unknownKey(file: string, path: string, key: string, known: string[]): PromforkError {
  const hint = closest(key, new Map(known.map((k) => [k, k])));
  return new PromforkError(
    'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
    `unknown key \`${path}\` in ${file} (the Python Gunicorn Prometheus Exporter's layout)` +
      (hint ? `; did you mean \`${hint}\`?` : `; its keys here are ${known.join(', ')}`),
  );
}

/** Reads and checks the `exporter` section of `file` (an absolute path, for messages). */
export function readPythonExporterLayout(file: string, exporter: Record<string, unknown>): PythonExporterLayout {
  const layout: PythonExporterLayout = { file, values: new Map(), ignored: [] };
  const walk = (section: Record<string, unknown>, rules: Rules, at: string) => {
    for (const [key, value] of Object.entries(section)) {
      const path = `${at}.${key}`;
      const rule = rules[key];
      if (rule === undefined) throw unknownKey(file, path, key, Object.keys(rules));
      if (!isRule(rule)) {
        if (value === null) continue;
        if (!isRecord(value)) throw invalidValue(`\`${path}\` in ${file}`, { type: 'string', expects: 'a mapping' }, value);
        walk(value, rule, path);
        continue;
      }
      if (value === null || value === undefined) continue; // its loader skips None: not set
      if (isIgnored(rule)) {
        layout.ignored.push({ path, reason: rule.ignored });
        continue;
      }
      const spec = isSwitch(rule) ? BOOL : SETTINGS_BY_KEY.get(rule.setting)!;
      // An empty password or TLS path means "none" in its documentation's examples.
      if (value === '' && !isSwitch(rule) && spec.nullable) continue;
      const text = asEnvText(file, path, spec, value);
      const before = layout.values.get(rule.env);
      if (before && before.value !== text) {
        throw new PromforkError(
          'PROMFORK_ERR_CONFIG_FILE',
          `cannot load config file ${file}: \`${before.path}\` and \`${path}\` set the same thing to different values; keep one`,
        );
      }
      if (!before) layout.values.set(rule.env, { path, value: text });
    }
  };
  walk(exporter, SECTIONS, 'exporter');
  return layout;
}

const isTrue = (text: string | undefined): boolean => text !== undefined && /^(true|1)$/i.test(text);

/** The environment with the file's values under it: a variable set (non-empty) in `env` wins. */
export function underEnvironment(fileEnv: Record<string, string>, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(fileEnv)) if (env[name] === undefined || env[name] === '') merged[name] = value;
  return merged;
}

/**
 * The environment defaults the file gives, under the real environment `env` (a variable set there wins, as
 * with the Python exporter's loader), and the lines the primary reports: ignored keys, and TLS keys that do
 * not apply (ssl.enabled false, or client CAs without client_auth_required), each once.
 */
export function layoutEnvironment(layout: PythonExporterLayout, env: NodeJS.ProcessEnv): { env: Record<string, string>; notices: string[] } {
  const out: Record<string, string> = {};
  const notices = layout.ignored.map(({ path, reason }) => `${layout.file}: \`${path}\` is ignored: ${reason}`);
  const effective = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : layout.values.get(name)?.value);
  const sslOn = isTrue(effective('PROMETHEUS_SSL_ENABLED'));
  const clientAuth = isTrue(effective('PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED'));
  const unused: string[] = [];
  for (const [name, { path, value }] of layout.values) {
    const tlsKey = name.startsWith('PROMETHEUS_SSL_') && name !== 'PROMETHEUS_SSL_ENABLED';
    if (tlsKey && !sslOn) {
      if (name !== 'PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED') unused.push(`\`${path}\``);
      continue;
    }
    if ((name === 'PROMETHEUS_SSL_CLIENT_CAFILE' || name === 'PROMETHEUS_SSL_CLIENT_CAPATH') && !clientAuth) {
      notices.push(
        `${layout.file}: \`${path}\` is ignored: client_auth_required is not true, so no client certificate is requested (as in the Python exporter)`,
      );
      continue;
    }
    out[name] = value;
  }
  if (unused.length > 0) notices.push(`${layout.file}: ${unused.join(', ')} ${unused.length > 1 ? 'are' : 'is'} ignored: ssl.enabled is not true`);
  if (sslOn && clientAuth && out.PROMETHEUS_SSL_CLIENT_CAFILE === undefined && out.PROMETHEUS_SSL_CLIENT_CAPATH === undefined &&
    !effective('PROMETHEUS_SSL_CLIENT_CAFILE') && !effective('PROMETHEUS_SSL_CLIENT_CAPATH')) {
    throw new PromforkError(
      'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${layout.file}: ssl.client_auth_required is true but neither client_cafile nor client_capath is set: ` +
        'give the CA that signs the client certificates',
    );
  }
  return { env: out, notices };
}

/** Every key of the layout and what it becomes here, for the migration guide's table (and its test). */
export function layoutKeys(): { path: string; env?: string; setting?: SettingKey; ignored?: string }[] {
  const rows: { path: string; env?: string; setting?: SettingKey; ignored?: string }[] = [];
  const walk = (rules: Rules, at: string) => {
    for (const [key, rule] of Object.entries(rules)) {
      const path = `${at}.${key}`;
      if (!isRule(rule)) walk(rule, path);
      else if (isIgnored(rule)) rows.push({ path, ignored: rule.ignored });
      else rows.push({ path, env: rule.env, ...(isSwitch(rule) ? {} : { setting: rule.setting }) });
    }
  };
  walk(SECTIONS, 'exporter');
  return rows;
}

