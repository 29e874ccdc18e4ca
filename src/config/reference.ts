// The configuration reference (docs/configuration.md), rendered from the same tables the parser, --help and
// --check-config use: the settings table, the other command-line options and the hook names. Pure: no I/O, and
// no default that depends on the machine is evaluated (those carry a `defaultHelp` text in the table).
// `npm run docs` writes the output; a test fails when the file is stale.

import { CONFIG_EXTENSIONS } from './load-file.js';
import { DEFAULT_CONFIG_FILES } from './resolve.js';
import { CLI_OPTIONS, CMD_ARGS_ENV, SETTINGS, mainFlag, type AnySettingDef } from './settings.js';
import { HOOK_NAMES, type HookName, type SettingKey } from './types.js';
import { expectation } from './validate.js';

export interface SettingGroup {
  title: string;
  intro: string;
  keys: readonly SettingKey[];
}

/** How the reference groups the settings. A setting in no group is still rendered, under "Other settings". */
export const SETTING_GROUPS: readonly SettingGroup[] = [
  {
    title: 'Server',
    intro: "The arbiter and its workers, with Gunicorn's meaning and defaults.",
    keys: [
      'app', 'bind', 'workers', 'workerClass', 'threads', 'workerConnections', 'maxRequests', 'maxRequestsJitter',
      'timeout', 'gracefulTimeout', 'keepalive', 'backlog', 'pidfile', 'procName', 'chdir',
    ],
  },
  {
    title: 'Logging',
    intro: "The error log (Gunicorn's format) and the access log (Gunicorn's atoms). SIGUSR1 reopens both files.",
    keys: ['accesslog', 'accessLogFormat', 'errorlog', 'loglevel'],
  },
  {
    title: 'Metrics',
    intro: 'The exporter: its HTTP server, the store directory, and how workers report. See [metrics.md](metrics.md) and [storage.md](storage.md).',
    keys: [
      'metrics', 'metricsPort', 'metricsBind', 'multiprocDir', 'metricsNamespace', 'metricsFlushInterval',
      'scrapeTimeout', 'endpointCap', 'metricsInstance', 'allInstances',
    ],
  },
  {
    title: 'Metrics server TLS and authentication',
    intro: 'For the primary and for `promfork exporter`. Without them /metrics is plain HTTP with no authentication.',
    keys: ['metricsCertfile', 'metricsKeyfile', 'metricsCaCerts', 'metricsCaPath', 'metricsBasicAuth', 'metricsBearerToken'],
  },
  {
    title: 'Redis store',
    intro: 'Snapshots in Redis instead of the directory (no files). See [storage.md](storage.md).',
    keys: [
      'redisEnabled', 'redisHost', 'redisPort', 'redisDb', 'redisKeyPrefix', 'redisPassword', 'redisUrl',
      'redisSentinelMaster', 'redisSentinelPassword', 'redisCluster',
    ],
  },
];

/** The settings `promfork exporter` reads (it accepts every option, and ignores the others). */
export const EXPORTER_SETTINGS: readonly SettingKey[] = [
  'metricsPort', 'metricsBind', 'metricsCertfile', 'metricsKeyfile', 'metricsCaCerts', 'metricsCaPath', 'metricsBasicAuth',
  'metricsBearerToken', 'multiprocDir', 'redisEnabled', 'redisHost', 'redisPort', 'redisDb', 'redisKeyPrefix',
  'redisPassword', 'redisUrl', 'redisSentinelMaster', 'redisSentinelPassword', 'redisCluster', 'metricsInstance',
  'allInstances', 'errorlog', 'loglevel',
];

export interface HookDoc {
  /** Which process runs it. */
  process: string;
  /** The call, as a config file exports it. */
  signature: string;
  /** When it runs. */
  when: string;
  /** Gunicorn's hook of the same role, or null. */
  gunicorn: string | null;
}

/** One entry per hook name: the compiler fails here when a hook is added to `Hooks` without its documentation. */
export const HOOK_DOCS: Readonly<Record<HookName, HookDoc>> = {
  onStarting: {
    process: 'primary',
    signature: 'onStarting(arbiter)',
    when: 'at start, after the metrics store is prepared and before the listening sockets are bound',
    gunicorn: 'on_starting',
  },
  onReload: {
    process: 'primary',
    signature: 'onReload(arbiter)',
    when: 'on HUP, after the configuration was re-read, before the workers are replaced',
    gunicorn: 'on_reload',
  },
  whenReady: {
    process: 'primary',
    signature: 'whenReady(arbiter)',
    when: 'once the sockets listen, before the first worker is forked',
    gunicorn: 'when_ready',
  },
  preFork: {
    process: 'primary',
    signature: 'preFork(arbiter, worker)',
    when: 'before each worker is forked (`worker.pid` is still 0)',
    gunicorn: 'pre_fork',
  },
  postFork: {
    process: 'worker',
    signature: 'postFork(arbiter, worker)',
    when: 'first thing in a new worker, before the app is imported; a throw is a boot error (exit 3)',
    gunicorn: 'post_fork',
  },
  postWorkerInit: {
    process: 'worker',
    signature: 'postWorkerInit(worker)',
    when: 'after the app was imported, before the worker serves; a throw is a boot error (exit 3)',
    gunicorn: 'post_worker_init',
  },
  workerInt: {
    process: 'worker',
    signature: 'workerInt(worker)',
    when: 'when the worker gets INT or QUIT, before it exits',
    gunicorn: 'worker_int',
  },
  workerAbort: {
    process: 'worker',
    signature: 'workerAbort(worker)',
    when: 'when the worker gets ABRT (the primary timed it out), before it exits with status 1',
    gunicorn: 'worker_abort',
  },
  preRequest: {
    process: 'worker (the thread, with `-k thread`)',
    signature: 'preRequest(worker, req)',
    when: 'before the app handles a request; not awaited',
    gunicorn: 'pre_request',
  },
  postRequest: {
    process: 'worker (the thread, with `-k thread`)',
    signature: 'postRequest(worker, req, res)',
    when: 'after the response was closed; not awaited',
    gunicorn: 'post_request',
  },
  childExit: {
    process: 'primary',
    signature: 'childExit(arbiter, worker)',
    when: 'after a worker process exited, whatever the cause',
    gunicorn: 'child_exit',
  },
  workerExit: {
    process: 'worker',
    signature: 'workerExit(arbiter, worker)',
    when: 'just before the worker process exits, after its final metrics snapshot',
    gunicorn: 'worker_exit',
  },
  nworkersChanged: {
    process: 'primary',
    signature: 'nworkersChanged(arbiter, newValue, oldValue)',
    when: 'each time the number of workers is set: at start (`oldValue` null), on HUP, TTIN and TTOU',
    gunicorn: 'nworkers_changed',
  },
  onExit: {
    process: 'primary',
    signature: 'onExit(arbiter)',
    when: 'after the workers stopped, just before the primary exits',
    gunicorn: 'on_exit',
  },
  endpointLabel: {
    process: 'worker',
    signature: 'endpointLabel(req)',
    when: 'for a failed request: returns its `endpoint` label, or null for the default',
    gunicorn: null,
  },
};

/** Default hooks of `promfork/hooks` that promfork runs after the user's hook of the same name (metrics on). */
export const DEFAULT_HOOKS: Readonly<Partial<Record<HookName, string>>> = {
  onStarting: 'defaultOnStarting',
  whenReady: 'defaultWhenReady',
  postFork: 'defaultPostFork',
  workerInt: 'defaultWorkerInt',
  onExit: 'defaultOnExit',
};

function code(s: string): string {
  // A backtick inside the text needs a longer fence.
  return s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function showValue(v: unknown): string {
  if (v === null) return 'none';
  if (typeof v === 'boolean') return code(String(v));
  if (Array.isArray(v)) return v.map((x) => code(String(x))).join(', ');
  return code(String(v));
}

function flagsText(def: AnySettingDef): string {
  if (def.flags.length === 0) return `positional ${code(def.metavar)}`;
  const flags = def.flags.map((f) => code(def.metavar ? `${f} ${def.metavar}` : f));
  if (def.type === 'bool') flags.push(code(`--no-${mainFlag(def).slice(2)}`));
  return flags.join(', ');
}

/** The default as the reference shows it: the value with an empty environment, or the table's own wording. */
export function referenceDefault(def: AnySettingDef): string {
  if (def.defaultHelp !== undefined) return def.defaultHelp;
  const d = def.default;
  const value = typeof d === 'function' ? (d as (env: NodeJS.ProcessEnv) => unknown)({}) : d;
  return showValue(value);
}

/** Flags and `__other__` in the table's help texts, as code (Markdown would read `__x__` as bold). */
function codeSpans(text: string): string {
  return text.replace(/(?<![`\w-])(--[a-z][a-z-]*|__\w+__)(?![`\w-])/g, '`$1`');
}

function description(def: AnySettingDef): string {
  let text = codeSpans(def.help);
  if (def.path) text += ' A relative path is resolved against the working directory.';
  if (def.secret) text += ' Secret: `--check-config` shows it as `"********"`.';
  return text;
}

function settingRow(def: AnySettingDef): string {
  const env = (def.envVars ?? []).map(code).join(', then ') || '';
  const cols = [code(def.key), flagsText(def), env, expectation(def, true), referenceDefault(def), description(def)];
  return `| ${cols.map(cell).join(' | ')} |`;
}

const TABLE_HEAD = '| Key | Command line | Environment | Value | Default | Description |\n|---|---|---|---|---|---|';

function groupSection(title: string, intro: string, defs: readonly AnySettingDef[]): string {
  return [`### ${title}`, '', intro, '', TABLE_HEAD, ...defs.map(settingRow), ''].join('\n');
}

function envIndex(): string {
  const rows: string[] = [];
  for (const def of SETTINGS) {
    for (const name of def.envVars ?? []) rows.push(`| ${code(name)} | ${code(def.key)} | ${code(mainFlag(def))} |`);
  }
  rows.sort();
  return [
    '| Variable | Setting | Flag |',
    '|---|---|---|',
    ...rows,
    `| ${code(CMD_ARGS_ENV)} | more command-line options, split like a shell command line | |`,
  ].join('\n');
}

function hookTable(): string {
  const rows = HOOK_NAMES.map((name) => {
    const h = HOOK_DOCS[name];
    const def = DEFAULT_HOOKS[name];
    const cols = [
      code(h.signature),
      h.process,
      h.when + (def ? `. Followed by ${code(def)}` : ''),
      h.gunicorn ? code(h.gunicorn) : 'none (promfork only)',
    ];
    return `| ${cols.map(cell).join(' | ')} |`;
  });
  return ['| Hook | Runs in | When | Gunicorn |', '|---|---|---|---|', ...rows].join('\n');
}

/** The whole of docs/configuration.md. */
export function renderConfigurationReference(): string {
  const grouped = new Set<SettingKey>();
  const sections: string[] = [];
  for (const group of SETTING_GROUPS) {
    const defs = group.keys
      .map((k) => SETTINGS.find((d) => d.key === k))
      .filter((d): d is AnySettingDef => d !== undefined);
    for (const d of defs) grouped.add(d.key);
    sections.push(groupSection(group.title, group.intro, defs));
  }
  const rest = SETTINGS.filter((d) => !grouped.has(d.key));
  if (rest.length > 0) sections.push(groupSection('Other settings', 'Settings not yet sorted into a group above.', rest));

  const cliRows = CLI_OPTIONS.map((o) => {
    const flags = o.flags.map((f) => code(o.metavar ? `${f} ${o.metavar}` : f)).join(', ');
    return `| ${flags} | ${cell(o.help)} |`;
  });

  const exporterKeys = EXPORTER_SETTINGS.map((k) => {
    const def = SETTINGS.find((d) => d.key === k);
    return def && def.flags.length > 0 ? code(mainFlag(def)) : code(k);
  });

  return `<!-- Generated by \`npm run docs\` (scripts/gen-config-reference.ts) from src/config/settings.ts and src/config/reference.ts. Do not edit: a test fails when this file is stale. -->

# Configuration reference

Every setting of promfork, its command-line flags, its environment variables and its default. This page is
generated from the settings table that the parser, \`promfork --help\` and \`promfork --check-config\` read, so
it cannot disagree with them.

## Where settings come from

Precedence, lowest first:

1. the built-in defaults (the Default column);
2. defaults read from the environment (the Environment column; when several variables are listed, the first one
   set and non-empty wins). They are read after the config file has run, so a JS config file that sets
   \`process.env.X\` (as the Python exporter's examples do) takes effect;
3. the config file (\`-c FILE\`, else ${DEFAULT_CONFIG_FILES.map((f) => code(`./${f}`)).join(' or ')} when present);
4. \`${CMD_ARGS_ENV}\`: more options, split like a shell command line;
5. the command line.

So an environment variable is a default: a config file or a flag overrides it. \`promfork --check-config ...\`
prints the resolved value of every setting (secrets masked) and exits; \`promfork --help\` lists the same table.

Config files: ${CONFIG_EXTENSIONS.map(code).join(' ')}. A JS file may \`export default { ... }\`, export each setting
and hook by name (like \`gunicorn.conf.py\`), or both (named exports win). JSON and YAML files hold the same keys;
a hook there is a string \`"MODULE:EXPORT"\`. An unknown key is an error that names the key (and the closest known
one). A key set to \`undefined\` counts as not set.

Values: the Value column says what the command line, the environment and config files accept. Booleans are
\`true\`/\`false\` (also \`1\`/\`0\`, any case, on the command line and in the environment); a bool flag \`--x\` also
has \`--no-x\`. Lists and \`null\` are written only in config files; on the command line a list option is repeated
(\`-b A -b B\`). A wrong value stops promfork with one line naming the flag, variable or key, and exit status 1
(see [troubleshooting.md](troubleshooting.md)).

## Settings

${sections.join('\n')}
## Command-line options that are not settings

| Option | Meaning |
|---|---|
${cliRows.join('\n')}

Usage: \`promfork [options] MODULE[:EXPORT]\`. \`EXPORT\` defaults to the module's default export, then \`app\`.

## Environment variables

${envIndex()}

promfork also **publishes** settings in each worker's environment (the default \`postFork\` hook, see [hooks.md](hooks.md)):
\`GUNICORN_WORKERS\`, \`GUNICORN_BIND\`, \`GUNICORN_WORKER_CLASS\`, \`PROMETHEUS_MULTIPROC_DIR\`,
\`PROMETHEUS_METRICS_PORT\`, \`PROMETHEUS_BIND_ADDRESS\`, so app code written for the Python exporter finds them.

## \`promfork exporter\`

\`promfork exporter [options]\` serves /metrics from the store without a primary ([storage.md](storage.md)). It accepts the
same options, flags and environment as \`promfork\` (no app), and reads these: ${exporterKeys.join(', ')}.

## Hooks

Hooks are functions exported by a JS config file under these names (or \`"MODULE:EXPORT"\` strings in any config
file). They may be async; a hook that throws is logged, except \`postFork\` and \`postWorkerInit\`, whose failure is
a worker boot error. With metrics on, promfork runs its default hook after yours where the table says so. Details
and examples: [hooks.md](hooks.md).

${hookTable()}
`;
}
