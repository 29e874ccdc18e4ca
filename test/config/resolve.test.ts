import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/resolve.js';
import { defaultSettings } from '../../src/config/settings.js';
import { cleanupTempDirs, fixture, rejectsError, tempDir } from './helpers.js';

after(cleanupTempDirs);

describe('resolveConfig: precedence', () => {
  // One temp cwd for the whole ladder, with a config file setting workers = 3.
  const cwd = tempDir({ 'conf.json': '{ "workers": 3 }' });
  const workers = async (argv: string[], env: NodeJS.ProcessEnv) =>
    (await resolveConfig(['app.js', ...argv], env, cwd)).config.settings.workers;

  it('built-in default', async () => assert.equal(await workers([], {}), 1));
  it('env default beats built-in', async () => assert.equal(await workers([], { WEB_CONCURRENCY: '2' }), 2));
  it('config file beats env default', async () => assert.equal(await workers(['-c', 'conf.json'], { WEB_CONCURRENCY: '2' }), 3));
  it('PROMFORK_CMD_ARGS beats config file', async () =>
    assert.equal(await workers(['-c', 'conf.json'], { WEB_CONCURRENCY: '2', PROMFORK_CMD_ARGS: '-w 4' }), 4));
  it('command line beats PROMFORK_CMD_ARGS', async () =>
    assert.equal(await workers(['-c', 'conf.json', '-w', '5'], { WEB_CONCURRENCY: '2', PROMFORK_CMD_ARGS: '-w 4' }), 5));

  it('a list given on a higher level replaces the lower one', async () => {
    const { config } = await resolveConfig(['app.js', '-b', ':1', '-b', ':2', '-c', fixture('named.js')], {}, cwd);
    assert.deepEqual(config.settings.bind, [':1', ':2']);
  });

  it('merges levels setting by setting', async () => {
    const { config } = await resolveConfig(
      ['app.js', '-c', fixture('settings.yml'), '--threads', '3'],
      { PROMFORK_CMD_ARGS: "--name 'from env' --keep-alive 9", PROMETHEUS_METRICS_PORT: '9100' },
      cwd,
    );
    assert.deepEqual(config.settings, {
      ...defaultSettings({}),
      app: 'app.js',
      chdir: cwd,
      workers: 10, // file
      keepalive: 9, // PROMFORK_CMD_ARGS over the file's 5
      metrics: false, // file
      procName: 'from env',
      threads: 3, // CLI
      metricsPort: 9100, // env default
    });
  });
});

describe('resolveConfig: which config file', () => {
  it('-c on the command line, resolved against cwd', async () => {
    const cwd = tempDir({ 'a.json': '{ "workers": 2 }' });
    const { config } = await resolveConfig(['app.js', '-c', 'a.json'], {}, cwd);
    assert.equal(config.configFile, path.join(cwd, 'a.json'));
    assert.equal(config.settings.workers, 2);
  });

  it('-c inside PROMFORK_CMD_ARGS', async () => {
    const cwd = tempDir({ 'b.json': '{ "workers": 6 }' });
    const { config } = await resolveConfig(['app.js'], { PROMFORK_CMD_ARGS: '-c b.json' }, cwd);
    assert.equal(config.configFile, path.join(cwd, 'b.json'));
    assert.equal(config.settings.workers, 6);
  });

  it('-c on the command line wins over -c in PROMFORK_CMD_ARGS', async () => {
    const cwd = tempDir({ 'a.json': '{ "workers": 2 }', 'b.json': '{ "workers": 6 }' });
    const { config } = await resolveConfig(['app.js', '--config=a.json'], { PROMFORK_CMD_ARGS: '-c b.json' }, cwd);
    assert.equal(config.configFile, path.join(cwd, 'a.json'));
  });

  it('discovers ./promfork.config.js in cwd', async () => {
    const cwd = tempDir({ 'promfork.config.js': 'export const workers = 11;\nexport const app = "srv.js";\n' });
    const { config } = await resolveConfig([], {}, cwd);
    assert.equal(config.configFile, path.join(cwd, 'promfork.config.js'));
    assert.equal(config.settings.workers, 11);
    assert.equal(config.settings.app, 'srv.js');
  });

  it('discovers ./promfork.config.mjs when there is no .js', async () => {
    const cwd = tempDir({ 'promfork.config.mjs': 'export default { workers: 12 };\n' });
    const { config } = await resolveConfig(['app.js'], {}, cwd);
    assert.equal(config.configFile, path.join(cwd, 'promfork.config.mjs'));
    assert.equal(config.settings.workers, 12);
  });

  it('reads no file when there is none', async () => {
    const { config } = await resolveConfig(['app.js'], {}, tempDir());
    assert.equal(config.configFile, null);
    assert.deepEqual(config.hooks, {});
  });

  it('returns the hooks of the file', async () => {
    const { config } = await resolveConfig(['app.js', '-c', fixture('settings.yaml')], {}, tempDir());
    assert.deepEqual(Object.keys(config.hooks).sort(), ['onStarting', 'whenReady']);
  });

  it('re-resolving the same argv sees the changed file (HUP)', async () => {
    const cwd = tempDir({ 'promfork.config.js': 'export const workers = 2;\n' });
    const argv = ['app.js'];
    const first = await resolveConfig(argv, {}, cwd);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(cwd, 'promfork.config.js'), 'export const workers = 4;\n');
    const second = await resolveConfig(first.config.argv, {}, cwd);
    assert.deepEqual([first.config.settings.workers, second.config.settings.workers], [2, 4]);
  });
});

describe('resolveConfig: environment defaults', () => {
  const cwd = tempDir();
  const settings = async (env: NodeJS.ProcessEnv) => (await resolveConfig(['app.js'], env, cwd)).config.settings;

  it('PORT sets the default bind', async () => {
    assert.deepEqual((await settings({})).bind, ['127.0.0.1:8000']);
    assert.deepEqual((await settings({ PORT: '5000' })).bind, ['0.0.0.0:5000']);
  });

  it('WEB_CONCURRENCY, else GUNICORN_WORKERS, else 1', async () => {
    assert.equal((await settings({ WEB_CONCURRENCY: '3', GUNICORN_WORKERS: '5' })).workers, 3);
    assert.equal((await settings({ GUNICORN_WORKERS: '5' })).workers, 5);
    assert.equal((await settings({ WEB_CONCURRENCY: '', GUNICORN_WORKERS: '5' })).workers, 5, 'empty means unset');
    assert.equal((await settings({})).workers, 1);
  });

  it('the PROMETHEUS_* variables', async () => {
    const s = await settings({
      PROMETHEUS_METRICS_PORT: '9200',
      PROMETHEUS_BIND_ADDRESS: '127.0.0.1',
      PROMETHEUS_MULTIPROC_DIR: 'metrics-dir',
    });
    assert.deepEqual([s.metricsPort, s.metricsBind, s.multiprocDir], [9200, '127.0.0.1', path.join(cwd, 'metrics-dir')]);
    const d = await settings({});
    assert.deepEqual([d.metricsPort, d.metricsBind, d.multiprocDir], [9090, '0.0.0.0', '/tmp/prometheus_multiproc']);
  });

  it('bad values name the variable', async () => {
    await rejectsError(settings({ WEB_CONCURRENCY: 'abc' }), 'PROMFORK_ERR_INVALID_VALUE',
      'environment variable WEB_CONCURRENCY expects an integer >= 1, got "abc"');
    await rejectsError(settings({ GUNICORN_WORKERS: '0' }), 'PROMFORK_ERR_INVALID_VALUE',
      'environment variable GUNICORN_WORKERS expects an integer >= 1, got "0"');
    await rejectsError(settings({ PORT: '80a' }), 'PROMFORK_ERR_INVALID_VALUE',
      'environment variable PORT expects an integer between 0 and 65535, got "80a"');
    await rejectsError(settings({ PROMETHEUS_METRICS_PORT: '70000' }), 'PROMFORK_ERR_INVALID_VALUE',
      'environment variable PROMETHEUS_METRICS_PORT expects an integer between 0 and 65535, got "70000"');
  });

  it('a setting given elsewhere still needs a valid env value (as Gunicorn: defaults are computed first)', async () => {
    await rejectsError(resolveConfig(['app.js', '-w', '2'], { WEB_CONCURRENCY: 'x' }, cwd), 'PROMFORK_ERR_INVALID_VALUE',
      /^environment variable WEB_CONCURRENCY /);
  });

  it('a JS config that sets process.env takes effect (env read after the file ran)', async () => {
    const saved = process.env.PROMETHEUS_METRICS_PORT;
    delete process.env.PROMETHEUS_METRICS_PORT;
    try {
      const { config } = await resolveConfig(['app.js', '-c', fixture('sets-env.js')], process.env, cwd);
      assert.equal(config.settings.metricsPort, 9393);
      assert.equal(config.settings.workers, 2);
    } finally {
      if (saved === undefined) delete process.env.PROMETHEUS_METRICS_PORT;
      else process.env.PROMETHEUS_METRICS_PORT = saved;
    }
  });
});

describe('resolveConfig: the rest', () => {
  const cwd = tempDir();

  it('makes path settings absolute against cwd, keeping "-"', async () => {
    const { config } = await resolveConfig(
      ['app.js', '-p', 'run/p.pid', '--access-logfile', '-', '--error-logfile', 'logs/e.log', '--chdir', 'srv'],
      {},
      cwd,
    );
    const s = config.settings;
    assert.deepEqual(
      [s.pidfile, s.accesslog, s.errorlog, s.chdir, s.app],
      [path.join(cwd, 'run/p.pid'), '-', path.join(cwd, 'logs/e.log'), path.join(cwd, 'srv'), 'app.js'],
    );
    const d = (await resolveConfig(['app.js'], {}, cwd)).config.settings;
    assert.deepEqual([d.chdir, d.errorlog, d.pidfile, d.accesslog], [cwd, '-', null, null]);
  });

  it('keeps argv and reports the flags', async () => {
    const argv = ['--check-config', 'app.js:handler', '-w', '2'];
    const r = await resolveConfig(argv, {}, cwd);
    assert.deepEqual(r.config.argv, argv);
    assert.notEqual(r.config.argv, argv, 'a copy');
    assert.deepEqual([r.checkConfig, r.help, r.version], [true, false, false]);
  });

  it('the app: command line over PROMFORK_CMD_ARGS over the file', async () => {
    const c = ['-c', fixture('with-app.json')];
    assert.equal((await resolveConfig(c, {}, cwd)).config.settings.app, 'from-file.js:handler');
    assert.equal((await resolveConfig(c, { PROMFORK_CMD_ARGS: 'env.js' }, cwd)).config.settings.app, 'env.js');
    assert.equal((await resolveConfig([...c, 'cli.js'], { PROMFORK_CMD_ARGS: 'env.js' }, cwd)).config.settings.app, 'cli.js');
  });

  it('no app is an error', async () => {
    await rejectsError(resolveConfig(['-w', '2'], {}, cwd), 'PROMFORK_ERR_NO_APP',
      'no app given: pass MODULE[:EXPORT] on the command line (e.g. promfork app.js) or set `app` in the config file');
  });

  it('--help and --version need no app and read no file or env', async () => {
    for (const flag of ['--help', '-h', '--version', '-v']) {
      const r = await resolveConfig([flag, '-c', 'missing.js'], { WEB_CONCURRENCY: 'abc' }, cwd);
      assert.equal(r.help || r.version, true);
      assert.equal(r.config.configFile, null);
      assert.equal(r.config.settings.workers, 1);
    }
  });

  it('errors in PROMFORK_CMD_ARGS name it', async () => {
    await rejectsError(resolveConfig(['app.js'], { PROMFORK_CMD_ARGS: '--workers abc' }, cwd), 'PROMFORK_ERR_INVALID_VALUE',
      '--workers in PROMFORK_CMD_ARGS expects an integer >= 1, got "abc"');
    await rejectsError(resolveConfig(['app.js'], { PROMFORK_CMD_ARGS: "-n 'x" }, cwd), 'PROMFORK_ERR_INVALID_VALUE',
      /^PROMFORK_CMD_ARGS has an unterminated ' quote/);
  });

  it('command-line errors come first, before any file is read', async () => {
    await rejectsError(resolveConfig(['app.js', '--worker', '2', '-c', 'missing.js'], {}, cwd), 'PROMFORK_ERR_UNKNOWN_OPTION',
      'unknown option --worker; did you mean --workers?');
  });

  it('a missing -c file is an error', async () => {
    await rejectsError(resolveConfig(['app.js', '-c', 'missing.js'], {}, cwd), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${path.join(cwd, 'missing.js')}: file not found`);
  });
});
