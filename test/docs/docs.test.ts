// The hand-written docs stay true to the code: their links resolve, every error code is explained with its
// exit status, the log lines they quote exist, and the migration table maps every name of the Python exporter's API
// reference onto a name promfork really exports.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PromforkError, type ErrorCode } from '../../src/errors.js';
import { SETTINGS, mainFlag } from '../../src/config/settings.js';
import { ROOT } from '../helpers/server.js';

const DOCS = path.join(ROOT, 'docs');
const MARKDOWN = [path.join(ROOT, 'README.md'), ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS, f))];
const read = (file: string) => readFileSync(file, 'utf8');

function sourceText(dir = path.join(ROOT, 'src')): string {
  let out = '';
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out += sourceText(file);
    else if (entry.name.endsWith('.ts')) out += read(file);
  }
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, duplicates numbered. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!m) continue;
    const base = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Markdown links outside code: [text](target). */
function links(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) out.push(m[1]!);
  }
  return out;
}

describe('docs', () => {
  it('every relative link and anchor resolves', () => {
    const broken: string[] = [];
    for (const file of MARKDOWN) {
      for (const target of links(read(file))) {
        if (/^[a-z]+:/.test(target)) continue;
        const [rel, anchor] = target.split('#') as [string, string | undefined];
        const abs = rel === '' ? file : path.resolve(path.dirname(file), rel);
        if (!existsSync(abs)) {
          broken.push(`${path.relative(ROOT, file)}: ${target}`);
          continue;
        }
        if (anchor !== undefined && statSync(abs).isFile() && abs.endsWith('.md') && !anchors(read(abs)).has(anchor)) {
          broken.push(`${path.relative(ROOT, file)}: ${target} (no such heading)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('the README keeps the two set-up commands and links every doc', () => {
    const readme = read(path.join(ROOT, 'README.md'));
    assert.ok(readme.includes('npm install && npm start   # builds promfork and serves examples/plain.js on http://127.0.0.1:8000 with 2 workers\n'));
    assert.ok(readme.includes('npm test                   # builds and runs the whole test suite\n'));
    for (const f of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) assert.ok(readme.includes(`](docs/${f})`), `README links docs/${f}`);
    assert.ok(readme.includes('](dashboards/)') && readme.includes('](deploy/)'));
  });

  it('troubleshooting.md explains every error code with its exit status', () => {
    const doc = read(path.join(DOCS, 'troubleshooting.md'));
    const registry = /const registry = \{([\s\S]*?)\} as const;/.exec(read(path.join(ROOT, 'src', 'errors.ts')))![1]!;
    const codes = [...registry.matchAll(/^\s+(PROMFORK_ERR_[A-Z_]+):/gm)].map((m) => m[1]! as ErrorCode);
    assert.ok(codes.length >= 20);
    const rows = new Map<string, string>();
    for (const line of doc.split('\n')) {
      const m = /^\| `(PROMFORK_ERR_[A-Z_]+)` \|/.exec(line);
      if (m) {
        assert.ok(!rows.has(m[1]!), `${m[1]} has two rows`);
        rows.set(m[1]!, line);
      }
    }
    assert.deepEqual([...rows.keys()].sort(), [...codes].sort());
    for (const code of codes) {
      const status = new PromforkError(code, '').exitCode;
      // The worker table gives the status per row; every other section is about exit status 1.
      const perRow = /^\| `[A-Z_]+` \| (\d) \|/.exec(rows.get(code)!);
      assert.equal(perRow ? Number(perRow[1]) : 1, status, code);
    }
    for (const file of MARKDOWN) {
      for (const m of read(file).matchAll(/PROMFORK_ERR_[A-Z_]+/g)) assert.ok(codes.includes(m[0] as ErrorCode), `${path.basename(file)}: ${m[0]}`);
    }
  });

  it('the log lines the docs quote are the ones promfork writes', () => {
    const docs = MARKDOWN.map(read).join('\n');
    const src = sourceText() + read(path.join(ROOT, 'src', 'errors.ts'));
    for (const fragment of [
      'Listening at: ',
      'Using worker: ',
      'Serving metrics on ',
      'Booting worker with pid: ',
      'Metrics server not started, the app keeps serving: ',
      'WORKER TIMEOUT (pid:',
      'was sent SIGKILL! Perhaps out of memory?',
      'exited with code ',
      'Connection in use: ',
      'retrying in 1 second',
      'Uncaught exception in worker (pid:',
      'Exception in hook ',
      'Worker failed to boot.',
      'App failed to load.',
      'promfork: internal error (please report it)',
      'snapshots are not stored until it is back (reconnecting in the background)',
      'is reachable again',
      'cannot write the snapshot (',
      'promfork leaves them in place',
      'Redis storage ready at ',
      'Redis storage not reachable: ',
      'ports below 1024 need privileges, choose a higher port',
      'choose another --metrics-port or PROMETHEUS_METRICS_PORT',
      'the directory is writable by group or others (mode ',
      '; did you mean ',
    ]) {
      assert.ok(docs.includes(fragment), `the docs quote ${JSON.stringify(fragment)}`);
      assert.ok(src.includes(fragment), `src/ writes ${JSON.stringify(fragment)}`);
    }
  });
});

describe('docs/migration.md', () => {
  const doc = read(path.join(DOCS, 'migration.md'));
  const rows = doc.split('\n').filter((l) => l.startsWith('| '));
  const rowWith = (name: string) => rows.find((r) => r.includes(`\`${name}`));

  it('maps every environment variable of the Python exporter onto the same variable and its flag', () => {
    for (const name of ['PROMETHEUS_MULTIPROC_DIR', 'PROMETHEUS_METRICS_PORT', 'PROMETHEUS_BIND_ADDRESS', 'GUNICORN_WORKERS', 'REDIS_ENABLED', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_DB', 'REDIS_KEY_PREFIX']) {
      const def = SETTINGS.find((d) => d.envVars?.includes(name));
      assert.ok(def, `${name} is a promfork setting's variable`);
      const row = rows.find((r) => r.startsWith(`| \`${name}\` |`));
      assert.ok(row, `a row for ${name}`);
      assert.ok(row.includes(`\`${mainFlag(def)}\``) && row.includes(`key \`${def.key}\``), `${name}: flag and key`);
    }
  });

  it('maps every hook, class and function of the Python exporter onto a name promfork exports', async () => {
    const modules: Record<string, Record<string, unknown>> = {
      'promfork/hooks': await import('../../src/hooks.js'),
      'promfork/redis': await import('../../src/redis.js'),
      promfork: await import('../../src/index.js'),
    };
    const mapping: [python: string, ours: string, module: keyof typeof modules][] = [
      ['default_on_starting', 'defaultOnStarting', 'promfork/hooks'],
      ['default_when_ready', 'defaultWhenReady', 'promfork/hooks'],
      ['default_worker_int', 'defaultWorkerInt', 'promfork/hooks'],
      ['default_on_exit', 'defaultOnExit', 'promfork/hooks'],
      ['default_post_fork', 'defaultPostFork', 'promfork/hooks'],
      ['redis_when_ready', 'redisWhenReady', 'promfork/hooks'],
      ['HookManager', 'HookManager', 'promfork/hooks'],
      ['HookContext', 'HookContext', 'promfork/hooks'],
      ['EnvironmentManager', 'EnvironmentManager', 'promfork/hooks'],
      ['MetricsServerManager', 'MetricsServerManager', 'promfork/hooks'],
      ['WorkerManager', 'WorkerManager', 'promfork/hooks'],
      ['ProcessManager', 'ProcessManager', 'promfork/hooks'],
      ['RedisStorageManager', 'RedisStorageManager', 'promfork/redis'],
      ['setup_redis_metrics', 'setupRedisMetrics', 'promfork/redis'],
      ['teardown_redis_metrics', 'teardownRedisMetrics', 'promfork/redis'],
      ['get_redis_storage_manager', 'getRedisStorageManager', 'promfork/redis'],
      ['RedisStorageClient', 'RedisStorageClient', 'promfork/redis'],
      ['RedisStorageDict', 'RedisStorageDict', 'promfork/redis'],
      ['RedisDict', 'RedisDict', 'promfork/redis'],
      ['RedisValue', 'RedisValue', 'promfork/redis'],
      ['RedisMultiProcessCollector', 'RedisMultiProcessCollector', 'promfork/redis'],
      ['PrometheusMixin', 'SyncWorker', 'promfork'],
    ];
    for (const [python, ours, module] of mapping) {
      const row = rowWith(python);
      assert.ok(row, `a row for ${python}`);
      assert.ok(row.includes(ours), `${python}: ${ours} in its row`);
      assert.equal(typeof modules[module]![ours], 'function', `${module} exports ${ours}`);
    }
    // Methods of the managers, camelCase.
    for (const [cls, methods] of [
      ['HookManager', ['safeExecute']],
      ['EnvironmentManager', ['updateFromCli']],
      ['MetricsServerManager', ['setupServer', 'startServer', 'stopServer']],
      ['WorkerManager', ['updateMetrics', 'shutdownWorker']],
      ['ProcessManager', ['cleanupProcesses']],
      ['RedisStorageManager', ['setup', 'isEnabled', 'getClient', 'teardown']],
      ['RedisStorageClient', ['cleanupProcessKeys', 'getValueClass']],
      ['RedisValue', ['inc', 'set', 'get']],
      ['RedisMultiProcessCollector', ['metrics']],
    ] as const) {
      const module = cls.startsWith('Redis') ? 'promfork/redis' : 'promfork/hooks';
      const proto = (modules[module]![cls] as { prototype: Record<string, unknown> }).prototype;
      for (const m of methods) {
        assert.equal(typeof proto[m], 'function', `${cls}.${m}`);
        assert.ok(rowWith(cls)!.includes(m), `${cls}.${m} in its row`);
      }
    }
  });

  it('maps every worker class of the Python exporter onto a built-in worker class', async () => {
    const { resolveWorkerClass } = await import('../../src/workers/worker-classes.js');
    for (const [python, ours] of [
      ['PrometheusWorker', 'PrometheusWorker'],
      ['PrometheusThreadWorker', 'PrometheusThreadWorker'],
      ['PrometheusEventletWorker', 'PrometheusAsyncWorker'],
      ['PrometheusGeventWorker', 'PrometheusAsyncWorker'],
      ['PrometheusTornadoWorker', 'PrometheusAsyncWorker'],
    ]) {
      const row = rowWith(python);
      assert.ok(row && row.includes(ours), `${python}: ${ours}`);
      for (const name of [python, `gunicorn_prometheus_exporter.${python}`, `gunicorn_prometheus_exporter.plugin.${python}`]) {
        assert.equal((await resolveWorkerClass(name, ROOT, true)).id, ours, name);
      }
    }
    for (const name of ['sync', 'thread', 'async', 'PrometheusWorker', 'PrometheusThreadWorker', 'PrometheusAsyncWorker']) {
      assert.ok((await resolveWorkerClass(name, ROOT, true)).id.startsWith('Prometheus'), name);
    }
  });

  it('maps every Gunicorn setting to a promfork key and its flags', () => {
    const table = rows.filter((r) => /^\| `[a-z_]+`(, `[a-z_]+`)* \| /.test(r));
    for (const row of table) {
      const cells = row.split(' | ');
      const keys = [...cells[2]!.matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]!);
      assert.ok(keys.length > 0, row);
      for (const key of keys) {
        const def = SETTINGS.find((d) => d.key === key);
        assert.ok(def, `${key} is a setting`);
        for (const flag of def.flags) {
          if (flag.startsWith('--')) assert.ok(row.includes(`\`${flag}\``) || cells[3]!.includes('same flags'), `${key}: ${flag}`);
        }
      }
    }
    assert.equal(table.length, 16);
  });
});
