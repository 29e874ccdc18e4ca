// Config files in the Python Gunicorn Prometheus Exporter's YAML layout (`exporter: {prometheus, gunicorn, redis,
// ssl, cleanup}`), read as they are: its own files (test/fixtures/python-exporter/, see the README there), every key
// mapped or reported as ignored, and its precedence: the environment wins over the file, the command line over both.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../src/config/resolve.js';
import { layoutKeys } from '../../src/config/python-exporter-yaml.js';
import type { Settings } from '../../src/config/types.js';
import { freePort } from '../helpers/ports.js';
import { APP, request, startServer } from '../helpers/server.js';
import { startSidecar } from '../helpers/sidecar.js';
import { until } from '../helpers/poll.js';
import { cleanupTempDirs, rejectsError, tempDir } from './helpers.js';

after(cleanupTempDirs);

const DIR = fileURLToPath(new URL('../fixtures/python-exporter/', import.meta.url));
const file = (name: string) => path.join(DIR, name);

const MAPPED: (keyof Settings)[] = [
  'metricsPort', 'metricsBind', 'multiprocDir', 'metricsCertfile', 'metricsKeyfile', 'metricsCaCerts', 'metricsCaPath',
  'workers', 'timeout', 'keepalive', 'redisEnabled', 'redisHost', 'redisPort', 'redisDb', 'redisPassword', 'redisKeyPrefix',
];
const pick = (s: Settings) => Object.fromEntries(MAPPED.map((k) => [k, s[k]]));
const DEFAULTS = {
  metricsPort: 9090, metricsBind: '0.0.0.0', multiprocDir: '/tmp/prometheus_multiproc', metricsCertfile: null,
  metricsKeyfile: null, metricsCaCerts: null, metricsCaPath: null, workers: 1, timeout: 30, keepalive: 2,
  redisEnabled: false, redisHost: 'localhost', redisPort: 6379, redisDb: 0, redisPassword: null, redisKeyPrefix: 'gunicorn',
};

const TTL = '`exporter.redis.ttl_seconds` is ignored: promfork\'s keys expire on their own: a live server refreshes them every 5 s with a 60 s TTL, so series neither vanish while it runs nor outlive it';
const TTL_OFF = '`exporter.redis.ttl_disabled` is ignored: promfork\'s keys always expire once their server is gone (a dead server\'s series are not kept forever)';
const DB_FILES = '`exporter.cleanup.db_files` is ignored: promfork always removes the files of its own dead runs at start and never touches other files (prometheus_client *.db files are not used)';
const noClientAuth = (at: string) =>
  `\`${at}\` is ignored: client_auth_required is not true, so no client certificate is requested (as in the Python exporter)`;

async function resolved(name: string, env: NodeJS.ProcessEnv = {}, argv: string[] = []) {
  const { config } = await resolveConfig(['-c', file(name), 'app.js', ...argv], env, '/');
  return { settings: pick(config.settings), notices: (config.notices ?? []).map((n) => n.replace(`${file(name)}: `, '')) };
}

describe("the Python exporter's own files", () => {
  it('e2e/test_configs/basic.yml', async () => {
    assert.deepEqual(await resolved('e2e--test_configs--basic.yml'), {
      settings: { ...DEFAULTS, metricsPort: 9094 },
      notices: [DB_FILES],
    });
  });

  it('e2e/test_configs/redis.yml', async () => {
    assert.deepEqual(await resolved('e2e--test_configs--redis.yml'), {
      settings: { ...DEFAULTS, metricsPort: 9094, redisEnabled: true, redisHost: 'redis', redisKeyPrefix: 'gunicorn_test' },
      notices: [TTL, TTL_OFF, DB_FILES],
    });
  });

  it('e2e/test_configs/ssl.yml (ssl.enabled false, every path null)', async () => {
    assert.deepEqual(await resolved('e2e--test_configs--ssl.yml'), {
      settings: { ...DEFAULTS, metricsPort: 9094 },
      notices: [DB_FILES],
    });
  });

  it('example/gunicorn-prometheus-exporter-basic.yml (Redis off: its connection keys still set, inert)', async () => {
    assert.deepEqual(await resolved('example--gunicorn-prometheus-exporter-basic.yml'), {
      settings: { ...DEFAULTS, metricsPort: 9093, metricsBind: '127.0.0.1', workers: 2, timeout: 300, redisHost: '127.0.0.1' },
      notices: [TTL, TTL_OFF, DB_FILES],
    });
  });

  it('example/gunicorn-prometheus-exporter-production.yml: TLS, Redis, and client CAs unused without client_auth_required', async () => {
    assert.deepEqual(await resolved('example--gunicorn-prometheus-exporter-production.yml'), {
      settings: {
        ...DEFAULTS, metricsPort: 9093, multiprocDir: '/var/lib/prometheus/gunicorn',
        metricsCertfile: '/etc/ssl/certs/gunicorn-prometheus.crt', metricsKeyfile: '/etc/ssl/private/gunicorn-prometheus.key',
        workers: 8, timeout: 300, keepalive: 5, redisEnabled: true, redisHost: 'redis-cluster.internal',
        redisPassword: 'REPLACE_WITH_YOUR_REDIS_PASSWORD', redisKeyPrefix: 'gunicorn:prod',
      },
      notices: [
        TTL, TTL_OFF, DB_FILES,
        noClientAuth('exporter.prometheus.ssl.client_cafile'), noClientAuth('exporter.prometheus.ssl.client_capath'),
      ],
    });
  });

  it('example/gunicorn-prometheus-exporter-ssl.yml: client certificates required, from the CA file and directory', async () => {
    assert.deepEqual(await resolved('example--gunicorn-prometheus-exporter-ssl.yml'), {
      settings: {
        ...DEFAULTS, metricsPort: 9093, metricsCertfile: '/path/to/cert.pem', metricsKeyfile: '/path/to/key.pem',
        metricsCaCerts: '/path/to/ca.pem', metricsCaPath: '/path/to/ca/directory', workers: 4, timeout: 300,
        redisHost: '127.0.0.1',
      },
      notices: [TTL, TTL_OFF, DB_FILES],
    });
  });

  it('example/gunicorn-prometheus-exporter-redis.yml and docker/gunicorn-prometheus-exporter-basic.yml', async () => {
    assert.deepEqual((await resolved('example--gunicorn-prometheus-exporter-redis.yml')).settings, {
      ...DEFAULTS, metricsPort: 9093, metricsBind: '127.0.0.1', workers: 2, timeout: 300, redisEnabled: true, redisHost: '127.0.0.1',
    });
    assert.deepEqual((await resolved('docker--gunicorn-prometheus-exporter-basic.yml')).settings, {
      ...DEFAULTS, metricsPort: 9093, workers: 2, timeout: 300, redisEnabled: true, redisHost: 'redis',
    });
  });

  it("its documentation's layout, with the TLS keys in exporter.ssl", async () => {
    assert.deepEqual(await resolved('docs--yaml-configuration--production.yml'), {
      settings: {
        ...DEFAULTS, metricsPort: 9091, metricsBind: '127.0.0.1', multiprocDir: '/var/tmp/prometheus_multiproc',
        metricsCertfile: '/etc/ssl/certs/prometheus.crt', metricsKeyfile: '/etc/ssl/private/prometheus.key',
        metricsCaCerts: '/etc/ssl/certs/ca.crt', metricsCaPath: '/etc/ssl/certs', workers: 8, timeout: 60, keepalive: 5,
        redisEnabled: true, redisHost: 'redis.example.com', redisPassword: 'secret', redisKeyPrefix: 'gunicorn_prod',
      },
      notices: [TTL, TTL_OFF, DB_FILES],
    });
    // Empty strings for the password and the TLS paths mean "none" there.
    assert.deepEqual(await resolved('docs--yaml-configuration--complete.yml'), {
      settings: { ...DEFAULTS, metricsPort: 9091, workers: 2 },
      notices: [TTL, TTL_OFF, DB_FILES],
    });
  });

  it('every key of every file is either mapped to a setting, a switch, or reported as ignored', () => {
    const keys = new Map(layoutKeys().map((k) => [k.path, k]));
    const walk = (node: unknown, at: string, out: string[]) => {
      if (node && typeof node === 'object' && !Array.isArray(node)) for (const [k, v] of Object.entries(node)) walk(v, `${at}.${k}`, out);
      else out.push(at);
      return out;
    };
    for (const name of fs.readdirSync(DIR).filter((n) => n.endsWith('.yml'))) {
      // The files are YAML; read them with the same parser promfork uses.
      const data = JSON.parse(execFileSync(process.execPath, ['-e',
        `import('yaml').then(y => process.stdout.write(JSON.stringify(y.default.parse(require('fs').readFileSync(${JSON.stringify(file(name))}, 'utf8')))))`,
      ], { encoding: 'utf8' })) as { exporter: unknown };
      for (const leaf of walk(data.exporter, 'exporter', [])) {
        const k = keys.get(leaf.replace(/^exporter\.ssl\./, 'exporter.prometheus.ssl.'));
        assert.ok(k && (k.setting || k.ignored || /enabled|client_auth_required/.test(leaf)), `${name}: ${leaf}`);
      }
    }
  });
});

describe('precedence: its documented order, environment over file, command line over both', () => {
  const prod = 'example--gunicorn-prometheus-exporter-production.yml';

  it('an environment variable wins over the file; PROMFORK_CMD_ARGS and the command line win over both', async () => {
    const env = { PROMETHEUS_METRICS_PORT: '9500', REDIS_HOST: 'other', GUNICORN_TIMEOUT: '12', REDIS_PASSWORD: 'from-env' };
    const s = (await resolved(prod, env)).settings;
    assert.deepEqual([s.metricsPort, s.redisHost, s.timeout, s.redisPassword, s.keepalive], [9500, 'other', 12, 'from-env', 5]);
    const cmd = (await resolved(prod, { ...env, PROMFORK_CMD_ARGS: '--metrics-port 9600' }, ['--timeout', '7'])).settings;
    assert.deepEqual([cmd.metricsPort, cmd.timeout], [9600, 7]);
  });

  it('WEB_CONCURRENCY, then GUNICORN_WORKERS from the environment, win over gunicorn.workers', async () => {
    assert.equal((await resolved(prod, { GUNICORN_WORKERS: '3' })).settings.workers, 3);
    assert.equal((await resolved(prod, { WEB_CONCURRENCY: '5', GUNICORN_WORKERS: '3' })).settings.workers, 5);
  });

  it('PROMETHEUS_SSL_ENABLED=false turns the file\'s TLS off (reported); =true turns a disabled section on', async () => {
    const off = await resolved(prod, { PROMETHEUS_SSL_ENABLED: 'false' });
    assert.deepEqual([off.settings.metricsCertfile, off.settings.metricsKeyfile], [null, null]);
    assert.equal(
      off.notices.at(-1),
      '`exporter.prometheus.ssl.certfile`, `exporter.prometheus.ssl.keyfile`, `exporter.prometheus.ssl.client_cafile`, `exporter.prometheus.ssl.client_capath` are ignored: ssl.enabled is not true',
    );
    const dir = tempDir({
      'disabled.yml': 'exporter:\n  prometheus:\n    metrics_port: 9093\n    bind_address: "127.0.0.1"\n    ssl:\n      enabled: false\n      certfile: /c.pem\n      keyfile: /k.pem\n  gunicorn: {}\n',
    });
    const { config } = await resolveConfig(['-c', path.join(dir, 'disabled.yml'), 'app.js'], {}, dir);
    assert.equal(config.settings.metricsCertfile, null);
    assert.deepEqual(config.notices, [`${path.join(dir, 'disabled.yml')}: \`exporter.prometheus.ssl.certfile\`, \`exporter.prometheus.ssl.keyfile\` are ignored: ssl.enabled is not true`]);
    const on = await resolveConfig(['-c', path.join(dir, 'disabled.yml'), 'app.js'], { PROMETHEUS_SSL_ENABLED: 'true' }, dir);
    assert.deepEqual([on.config.settings.metricsCertfile, on.config.settings.metricsKeyfile, on.config.notices], ['/c.pem', '/k.pem', []]);
  });

  it('PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED=true in the environment makes the file\'s client CAs count', async () => {
    const s = (await resolved(prod, { PROMETHEUS_SSL_CLIENT_AUTH_REQUIRED: 'true' })).settings;
    assert.deepEqual([s.metricsCaCerts, s.metricsCaPath], ['/etc/ssl/certs/ca-bundle.crt', '/etc/ssl/certs']);
  });

  it('promfork keys may stand beside `exporter`, at the config file\'s level (over the environment)', async () => {
    const dir = tempDir({ 'mixed.yml': 'app: server.js\nworkers: 6\nexporter:\n  gunicorn:\n    workers: 2\n' });
    const { config } = await resolveConfig(['-c', path.join(dir, 'mixed.yml')], { WEB_CONCURRENCY: '4' }, dir);
    assert.equal(config.settings.workers, 6);
    assert.equal(config.settings.app, 'server.js');
  });
});

describe('mistakes in the layout: one line naming the key and the file', () => {
  const load = (text: string) => {
    const dir = tempDir({ 'c.yml': text });
    return { run: () => resolveConfig(['-c', path.join(dir, 'c.yml'), 'app.js'], {}, dir), at: path.join(dir, 'c.yml') };
  };

  it('an unknown key, with the closest known one', async () => {
    const { run, at } = load('exporter:\n  prometheus:\n    metrics_prot: 9093\n');
    await rejectsError(run(), 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
      `unknown key \`exporter.prometheus.metrics_prot\` in ${at} (the Python Gunicorn Prometheus Exporter's layout); did you mean \`metrics_port\`?`);
  });

  it('a value of the wrong kind', async () => {
    const { run, at } = load('exporter:\n  prometheus:\n    metrics_port: "ninety"\n');
    await rejectsError(run(), 'PROMFORK_ERR_INVALID_VALUE', `\`exporter.prometheus.metrics_port\` in ${at} expects an integer between 0 and 65535, got "ninety"`);
    const quoted = load('exporter:\n  prometheus:\n    metrics_port: "9093"\n');
    assert.equal((await quoted.run()).config.settings.metricsPort, 9093, 'a quoted number is read as its loader reads it');
  });

  it('the same TLS key in exporter.ssl and exporter.prometheus.ssl with different values', async () => {
    const { run, at } = load('exporter:\n  prometheus:\n    ssl:\n      certfile: /a.pem\n  ssl:\n    certfile: /b.pem\n');
    await rejectsError(run(), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${at}: \`exporter.prometheus.ssl.certfile\` and \`exporter.ssl.certfile\` set the same thing to different values; keep one`);
  });

  it('client_auth_required with no CA to verify clients against', async () => {
    const { run, at } = load('exporter:\n  prometheus:\n    ssl:\n      enabled: true\n      certfile: /c.pem\n      keyfile: /k.pem\n      client_auth_required: true\n');
    await rejectsError(run(), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${at}: ssl.client_auth_required is true but neither client_cafile nor client_capath is set: give the CA that signs the client certificates`);
  });
});

// The real server, started with the Python exporter's e2e/test_configs/basic.yml as it is. Its fixed port and
// 0.0.0.0 are overridden by the environment (its documented precedence), so the test listens on loopback only.
test('promfork -c e2e/test_configs/basic.yml serves the metrics and reports the ignored key once, also across a reload', async () => {
  const port = await freePort();
  const multiproc = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-pyyaml-'));
  const { server, url } = await startServer(['-c', file('e2e--test_configs--basic.yml'), APP], {
    env: { PROMETHEUS_METRICS_PORT: String(port), PROMETHEUS_BIND_ADDRESS: '127.0.0.1', PROMETHEUS_MULTIPROC_DIR: multiproc, WEB_CONCURRENCY: '2' },
  });
  assert.equal((await request(`${url}/`)).status, 200);
  const metrics = await until('the request is counted on the metrics port', async () => {
    const r = await request(`http://127.0.0.1:${port}/metrics`);
    return r.body.includes('gunicorn_worker_requests_total{worker_id=') ? r : undefined;
  });
  assert.equal(metrics.status, 200);
  // A reload re-reads the file and replaces both workers: still one line.
  const from = server.output.length;
  server.signal('SIGHUP');
  await server.waitFor(/Hang up: Master/, { from });
  await server.waitForCount(/Worker booted/, 2, { from });
  const warnings = server.output.split('\n').filter((l) => l.includes('exporter.cleanup.db_files'));
  assert.equal(warnings.length, 1, server.output);
  assert.match(warnings[0]!, /\[WARNING\] .*e2e--test_configs--basic\.yml: `exporter\.cleanup\.db_files` is ignored: /);
  await server.stop();
  fs.rmSync(multiproc, { recursive: true, force: true });
});

// Its SSL example with real certificates (the openssl CLI): client_auth_required true, CAs from the file and
// the directory; a scrape without a client certificate is refused, one with a certificate of the CA served.
test("promfork -c example/gunicorn-prometheus-exporter-ssl.yml requires client certificates, as the file asks", async () => {
  const pki = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-pyyaml-pki-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'], ['client', 'extendedKeyUsage=clientAuth\n']]) {
    fs.writeFileSync(path.join(pki, `${name}.ext`), `basicConstraints=CA:FALSE\n${ext}`);
    openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', name === 'server' ? '7' : '8',
      '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  }
  fs.mkdirSync(path.join(pki, 'ca-dir'));
  fs.copyFileSync(path.join(pki, 'ca.crt'), path.join(pki, 'ca-dir', 'ca.pem'));
  // Its file as it is, with its placeholder paths pointed at these certificates.
  const yml = path.join(pki, 'gunicorn-prometheus-exporter-ssl.yml');
  fs.writeFileSync(yml, fs.readFileSync(file('example--gunicorn-prometheus-exporter-ssl.yml'), 'utf8')
    .replace('/path/to/cert.pem', path.join(pki, 'server.crt')).replace('/path/to/key.pem', path.join(pki, 'server.key'))
    .replace('/path/to/ca.pem', path.join(pki, 'ca.crt')).replace('/path/to/ca/directory', path.join(pki, 'ca-dir')));
  const port = await freePort();
  const multiproc = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-pyyaml-'));
  const { server } = await startServer(['-c', yml, APP], {
    env: { PROMETHEUS_METRICS_PORT: String(port), PROMETHEUS_BIND_ADDRESS: '127.0.0.1', PROMETHEUS_MULTIPROC_DIR: multiproc, WEB_CONCURRENCY: '1' },
  });
  await until('the metrics server serves HTTPS', () => (server.output.includes('Serving metrics on https://') ? true : undefined));
  const ca = fs.readFileSync(path.join(pki, 'ca.crt'));
  const scrape = (client: { cert?: Buffer; key?: Buffer }) => new Promise<number | string>((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/metrics', ca, ...client, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  assert.equal(await scrape({ cert: fs.readFileSync(path.join(pki, 'client.crt')), key: fs.readFileSync(path.join(pki, 'client.key')) }), 200);
  assert.notEqual(await scrape({}), 200);
  await server.stop();
  fs.rmSync(pki, { recursive: true, force: true });
  fs.rmSync(multiproc, { recursive: true, force: true });
});

// The sidecar reads the same files (its metrics server keys; the others mean nothing to it) and reports the same way.
test('promfork exporter -c e2e/test_configs/basic.yml serves and reports the ignored key once', async () => {
  const multiproc = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-pyyaml-'));
  const { proc, metricsUrl } = await startSidecar(['-c', file('e2e--test_configs--basic.yml'), '--multiproc-dir', multiproc]);
  const r = await request(metricsUrl);
  assert.equal(r.status, 200);
  assert.match(r.body, /^promfork_exporter_start_time_seconds \d+(\.\d+)?$/m);
  const warnings = proc.output.split('\n').filter((l) => l.includes('exporter.cleanup.db_files'));
  assert.equal(warnings.length, 1, proc.output);
  await proc.stop();
  fs.rmSync(multiproc, { recursive: true, force: true });
});
