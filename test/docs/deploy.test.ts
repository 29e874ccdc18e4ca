// The deployment files in deploy/: the Prometheus configs pass the real promtool, the systemd unit passes
// systemd-analyze, the Kubernetes manifests are consistent, and every promfork command line in them uses real
// promfork options (parsed by promfork's own parser).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { parseArgs } from '../../src/config/parse-args.js';
import { CMD_ARGS_ENV, SETTINGS } from '../../src/config/settings.js';
import { ROOT } from '../helpers/server.js';
import { needTool } from '../helpers/tools.js';

const DEPLOY = path.join(ROOT, 'deploy');
const KNOWN_ENV = new Set([...SETTINGS.flatMap((d) => d.envVars ?? []), CMD_ARGS_ENV]);
/** Environment variables the manifests may set that are not promfork settings. */
const OTHER_ENV = new Set(['NODE_ENV', 'PATH']);

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * Checks a promfork command line: `promfork [options] APP` or `promfork exporter [options]`, with promfork's
 * own parser (unknown options and bad values throw). Returns the parsed settings.
 */
function checkPromforkArgs(args: string[], where: string): ReturnType<typeof parseArgs> & { exporter: boolean } {
  const exporter = args[0] === 'exporter';
  const parsed = parseArgs(exporter ? args.slice(1) : args, where);
  if (exporter) assert.equal(parsed.app, undefined, `${where}: promfork exporter takes no app`);
  else assert.ok(parsed.app, `${where}: the app is given`);
  return { ...parsed, exporter };
}

function checkEnvName(name: string, where: string): void {
  if (/^(PROMETHEUS_|REDIS_|PROMFORK_|GUNICORN_|WEB_CONCURRENCY$|PORT$)/.test(name)) {
    assert.ok(KNOWN_ENV.has(name), `${where}: ${name} is not an environment variable promfork reads`);
  } else {
    assert.ok(OTHER_ENV.has(name), `${where}: unexpected environment variable ${name}`);
  }
}

/** Runs `promtool check config`; where this promtool was built without Kubernetes discovery, checks the rest. */
function promtoolCheckConfig(promtool: string, file: string): void {
  const r = run(promtool, ['check', 'config', file]);
  if (r.status !== 0 && /field kubernetes_sd_configs not found/.test(r.out)) {
    // Debian's promtool has no Kubernetes service discovery: check everything else, with a static target in
    // place of the discovery and the rule files by absolute path (they were resolved against `file` above).
    const config = YAML.parse(readFileSync(file, 'utf8'));
    config.rule_files = config.rule_files.map((f: string) => path.resolve(path.dirname(file), f));
    for (const job of config.scrape_configs) {
      if (job.kubernetes_sd_configs) {
        delete job.kubernetes_sd_configs;
        job.static_configs = [{ targets: ['127.0.0.1:9090'] }];
      }
    }
    const copy = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-promtool-')), path.basename(file));
    writeFileSync(copy, YAML.stringify(config));
    const again = run(promtool, ['check', 'config', copy]);
    assert.equal(again.status, 0, again.out);
    assert.match(again.out, /SUCCESS: \d+ rule files found/);
    return;
  }
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rule files found/);
}

function checkPrometheusConfig(promtool: string, rel: string): void {
  const file = path.join(DEPLOY, rel);
  const config = YAML.parse(readFileSync(file, 'utf8'));
  // Prometheus resolves rule_files against the config file's directory.
  assert.ok(Array.isArray(config.rule_files) && config.rule_files.length > 0, `${rel}: rule_files`);
  for (const rules of config.rule_files as string[]) {
    const abs = path.resolve(path.dirname(file), rules);
    assert.equal(abs, path.join(ROOT, 'dashboards', 'alerts.yml'), `${rel}: ${rules}`);
    assert.ok(existsSync(abs), `${rel}: the rule file ${rules} (dashboards/alerts.yml) does not exist yet`);
  }
  assert.deepEqual(config.scrape_configs.map((j: { job_name: string }) => j.job_name), ['promfork']);
  // The alert rules select the scrape job by name: it must be this one.
  const alerts = readFileSync(path.join(ROOT, 'dashboards', 'alerts.yml'), 'utf8');
  for (const m of alerts.matchAll(/job="([^"]+)"/g)) assert.equal(m[1], 'promfork', `dashboards/alerts.yml selects job ${m[1]}`);
  promtoolCheckConfig(promtool, file);
}

describe('deploy/prometheus.yml and deploy/kubernetes/prometheus-kubernetes.yml', () => {
  it('pass promtool check config, with the alert rules of dashboards/', (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    checkPrometheusConfig(promtool, 'prometheus.yml');
    checkPrometheusConfig(promtool, 'kubernetes/prometheus-kubernetes.yml');
  });

  it('scrape the default metrics address of the primary', () => {
    const config = YAML.parse(readFileSync(path.join(DEPLOY, 'prometheus.yml'), 'utf8'));
    assert.deepEqual(config.scrape_configs[0].static_configs, [{ targets: ['127.0.0.1:9090'] }]);
    assert.equal(config.scrape_configs[0].metrics_path, '/metrics');
  });
});

describe('deploy/promfork.service', () => {
  const file = path.join(DEPLOY, 'promfork.service');
  const text = readFileSync(file, 'utf8');
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(kv, `not a KEY=value line: ${line}`);
    const key = `${section}.${kv[1]}`;
    keys.set(key, [...(keys.get(key) ?? []), kv[2]!]);
  }
  const one = (key: string) => {
    const v = keys.get(key);
    assert.equal(v?.length, 1, key);
    return v![0]!;
  };

  it('passes systemd-analyze verify without a warning', (t) => {
    const systemdAnalyze = needTool(t, 'systemd-analyze');
    if (systemdAnalyze === undefined) return;
    const r = run(systemdAnalyze, ['verify', file]);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.out, '');
  });

  it('runs promfork with real options, stops it gracefully and reloads it with HUP', () => {
    const exec = one('Service.ExecStart').split(/\s+/);
    assert.equal(exec[0], '/usr/bin/env');
    assert.equal(exec[1], 'promfork');
    const parsed = checkPromforkArgs(exec.slice(2), 'ExecStart');
    assert.equal(one('Service.Type'), 'exec'); // promfork has no sd_notify
    assert.equal(one('Service.ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('Service.KillSignal'), 'SIGTERM');
    assert.equal(one('Service.KillMode'), 'mixed'); // TERM to the primary only: it stops its workers itself
    const graceful = parsed.values.gracefulTimeout ?? 30;
    assert.ok(Number(one('Service.TimeoutStopSec')) > graceful, 'TimeoutStopSec > --graceful-timeout');
    assert.equal(one('Service.RestartPreventExitStatus'), '1 3 4');
  });

  it('keeps the metrics store in a private runtime directory', () => {
    const env = keys.get('Service.Environment')!.map((e) => e.split('=', 2) as [string, string]);
    for (const [name] of env) checkEnvName(name, 'Environment');
    const dir = env.find(([name]) => name === 'PROMETHEUS_MULTIPROC_DIR')?.[1];
    assert.equal(dir, `/run/${one('Service.RuntimeDirectory')}`);
    assert.equal(one('Service.RuntimeDirectoryMode'), '0700');
    assert.equal(one('Service.NoNewPrivileges'), 'yes');
    assert.equal(one('Service.ProtectSystem'), 'strict');
    assert.ok(!keys.has('Service.MemoryDenyWriteExecute'), 'V8 needs writable executable memory');
  });
});

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Record<string, { port?: string | number; path?: string }>;
  livenessProbe?: Record<string, { port?: string | number; path?: string }>;
  volumeMounts?: { name: string; mountPath: string }[];
}

function loadManifest(rel: string): Record<string, any>[] {
  const docs = YAML.parseAllDocuments(readFileSync(path.join(DEPLOY, rel), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], rel);
  return docs.map((d) => d.toJS());
}

/** Consistency of one workload and its Service; returns the promfork command lines of its containers. */
function checkWorkload(rel: string, workloadKind: string): { containers: Container[]; commands: ReturnType<typeof checkPromforkArgs>[] } {
  const objects = loadManifest(rel);
  assert.deepEqual(objects.map((o) => o.kind), [workloadKind, 'Service'], rel);
  const [workload, service] = objects as [Record<string, any>, Record<string, any>];
  assert.equal(workload.apiVersion, 'apps/v1');
  assert.equal(service.apiVersion, 'v1');
  const template = workload.spec.template;
  assert.deepEqual(workload.spec.selector.matchLabels, template.metadata.labels, `${rel}: selector`);
  assert.deepEqual(service.spec.selector, template.metadata.labels, `${rel}: Service selector`);
  const spec = template.spec;
  const containers = spec.containers as Container[];
  const volumes = new Set((spec.volumes ?? []).map((v: { name: string }) => v.name));
  const portNames = new Set(containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));
  const portNumbers = new Set(containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)));

  const commands: ReturnType<typeof checkPromforkArgs>[] = [];
  for (const c of containers) {
    const where = `${rel}: container ${c.name}`;
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      assert.ok(probe, `${where}: probes`);
      const action = probe.httpGet ?? probe.tcpSocket;
      assert.ok(action && (c.ports ?? []).some((p) => p.name === action.port), `${where}: a probe's port ${action?.port} is this container's`);
    }
    for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${where}: volume ${m.name}`);
    for (const e of c.env ?? []) checkEnvName(e.name, where);
    assert.ok(c.command?.[0]?.endsWith('/.bin/promfork'), `${where}: runs promfork`);
    const parsed = checkPromforkArgs(c.args ?? [], where);
    commands.push(parsed);
    // The store directory: a subdirectory of a mounted volume (promfork creates it 0700; it refuses the
    // emptyDir's own world-writable mount point).
    const envDir = (c.env ?? []).find((e) => e.name === 'PROMETHEUS_MULTIPROC_DIR')?.value;
    const dir = parsed.values.multiprocDir ?? envDir;
    assert.ok(dir, `${where}: PROMETHEUS_MULTIPROC_DIR or --multiproc-dir`);
    const mount = (c.volumeMounts ?? []).find((m) => dir.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `${where}: ${dir} is inside a mounted volume, not its mount point`);
    const graceful = parsed.values.gracefulTimeout ?? 30;
    assert.ok(spec.terminationGracePeriodSeconds > graceful, `${where}: terminationGracePeriodSeconds > --graceful-timeout`);
  }
  for (const p of service.spec.ports) assert.ok(portNames.has(p.targetPort), `${rel}: Service targetPort ${p.targetPort}`);
  const annotations = template.metadata.annotations;
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(annotations['prometheus.io/path'], '/metrics');
  assert.ok(portNumbers.has(Number(annotations['prometheus.io/port'])), `${rel}: prometheus.io/port is a container port`);
  return { containers, commands };
}

describe('deploy/kubernetes', () => {
  it('sidecar.yaml: a Deployment (promfork, and a promfork exporter on the shared store) and its Service', () => {
    const { containers, commands } = checkWorkload('kubernetes/sidecar.yaml', 'Deployment');
    assert.deepEqual(commands.map((c) => c.exporter), [false, true]);
    const [app, sidecar] = commands as [ReturnType<typeof checkPromforkArgs>, ReturnType<typeof checkPromforkArgs>];
    const appDir = containers[0]!.env!.find((e) => e.name === 'PROMETHEUS_MULTIPROC_DIR')!.value;
    assert.equal(sidecar.values.multiprocDir, appDir, 'the sidecar reads the directory the app writes');
    assert.equal(app.values.metricsBind, '127.0.0.1', "the primary's own metrics server stays inside the pod");
    assert.equal(sidecar.values.metricsPort, 9091);
    const objects = loadManifest('kubernetes/sidecar.yaml');
    // The sidecar checks that the primary's pid is alive: it must see the app container's processes.
    assert.equal(objects[0]!.spec.template.spec.shareProcessNamespace, true);
    assert.equal(objects[0]!.spec.template.metadata.annotations['prometheus.io/port'], '9091');
  });

  it('daemonset.yaml: one promfork per node, with a hostPort, scrape annotations and a node-local Service', () => {
    const { containers, commands } = checkWorkload('kubernetes/daemonset.yaml', 'DaemonSet');
    assert.deepEqual(commands.map((c) => c.exporter), [false]);
    assert.ok(containers[0]!.ports!.some((p) => (p as { hostPort?: number }).hostPort === 8000));
    const service = loadManifest('kubernetes/daemonset.yaml')[1]!;
    assert.equal(service.spec.internalTrafficPolicy, 'Local');
  });
});
