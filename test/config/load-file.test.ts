import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadConfigFile, loadHooksFromFile } from '../../src/config/load-file.js';
import { FIXTURES, cleanupTempDirs, fixture, rejectsError, tempDir } from './helpers.js';

after(cleanupTempDirs);

// The same module instance the loader gets for "./hooks.js" in settings.yaml.
const hooksModule = (await import(pathToFileURL(fixture('hooks.js')).href)) as Record<string, unknown>;

describe('loadConfigFile: formats', () => {
  it('.js with named exports (settings and a hook)', async () => {
    const f = await loadConfigFile(fixture('named.js'));
    assert.equal(f.path, fixture('named.js'));
    assert.deepEqual(f.settings, {
      workers: 3,
      bind: ['127.0.0.1:9001', 'unix:/tmp/promfork-named.sock'],
      timeout: 12.5,
      loglevel: 'debug',
    });
    assert.deepEqual(Object.keys(f.hooks), ['onStarting']);
    assert.equal(f.hooks.onStarting?.(null), 'named.onStarting');
  });

  it('.js with a default export', async () => {
    const f = await loadConfigFile(fixture('default.js'));
    assert.deepEqual(f.settings, { workers: 5, metrics: false, accesslog: '-' });
    assert.equal(f.hooks.postFork?.(null, null), 'default.postFork');
  });

  it('.mjs with both: the default object first, named exports win', async () => {
    const f = await loadConfigFile(fixture('both.mjs'));
    assert.deepEqual(f.settings, { workers: 7, threads: 4, maxRequests: 100 });
  });

  it('.cjs with module.exports', async () => {
    const f = await loadConfigFile(fixture('common.cjs'));
    assert.deepEqual(f.settings, { workers: 6, workerClass: 'sync' });
    assert.equal(f.hooks.whenReady?.(null), 'common.whenReady');
  });

  it('.cjs transpiled from ESM: __esModule is ignored and the default unwrapped', async () => {
    const f = await loadConfigFile(fixture('transpiled.cjs'));
    assert.deepEqual(f.settings, { workers: 9, threads: 8 });
  });

  it('.json, with bind as a string and an explicit null', async () => {
    const f = await loadConfigFile(fixture('settings.json'));
    assert.deepEqual(f.settings, {
      workers: 4, bind: ['0.0.0.0:8080'], maxRequestsJitter: 10, pidfile: null, procName: 'from-json',
    });
    assert.deepEqual(f.hooks, {});
  });

  it('.yaml, with hook strings resolved relative to the file', async () => {
    const f = await loadConfigFile(fixture('settings.yaml'));
    assert.deepEqual(f.settings, { workers: 8, bind: ['127.0.0.1:8001', '[::1]:8002'], loglevel: 'warning' });
    assert.equal(f.hooks.onStarting, hooksModule.onStarting);
    assert.equal(f.hooks.whenReady, hooksModule.whenReady, 'EXPORT defaults to the hook name');
  });

  it('.yml', async () => {
    const f = await loadConfigFile(fixture('settings.yml'));
    assert.deepEqual(f.settings, { workers: 10, keepalive: 5, metrics: false });
  });

  it('resolves a relative path against cwd', async () => {
    const f = await loadConfigFile('settings.yml', FIXTURES);
    assert.equal(f.path, fixture('settings.yml'));
  });

  it('an empty YAML file sets nothing', async () => {
    const dir = tempDir({ 'empty.yaml': '# nothing here\n' });
    assert.deepEqual(await loadConfigFile(path.join(dir, 'empty.yaml')), { path: path.join(dir, 'empty.yaml'), settings: {}, hooks: {} });
  });

  it('a key set to undefined counts as not set', async () => {
    const dir = tempDir({ 'c.js': 'export const workers = undefined;\nexport default { pidfile: undefined, threads: 2 };\n' });
    assert.deepEqual((await loadConfigFile(path.join(dir, 'c.js'))).settings, { threads: 2 });
  });

  it('loadHooksFromFile returns only the hooks', async () => {
    const hooks = await loadHooksFromFile(fixture('settings.yaml'));
    assert.deepEqual(Object.keys(hooks).sort(), ['onStarting', 'whenReady']);
  });
});

describe('loadConfigFile: re-reading (HUP)', () => {
  it('sees the new content of the same .js path', async () => {
    const dir = tempDir({ 'promfork.config.js': 'export const workers = 2;\n' });
    const file = path.join(dir, 'promfork.config.js');
    assert.equal((await loadConfigFile(file)).settings.workers, 2);
    writeFileSync(file, 'export const workers = 3;\n');
    assert.equal((await loadConfigFile(file)).settings.workers, 3);
    writeFileSync(file, 'export default { workers: 4 };\n');
    assert.deepEqual((await loadConfigFile(file)).settings, { workers: 4 });
  });

  it('sees the new content of the same .cjs path', async () => {
    const dir = tempDir({ 'c.cjs': 'module.exports = { workers: 2 };\n' });
    const file = path.join(dir, 'c.cjs');
    assert.equal((await loadConfigFile(file)).settings.workers, 2);
    writeFileSync(file, 'module.exports = { workers: 5 };\n');
    assert.equal((await loadConfigFile(file)).settings.workers, 5);
  });

  it('sees the new content of a CommonJS .js file', async () => {
    const dir = tempDir({ 'c.js': 'exports.workers = 2;\n' });
    writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    const file = path.join(dir, 'c.js');
    assert.equal((await loadConfigFile(file)).settings.workers, 2);
    writeFileSync(file, 'exports.workers = 6;\n');
    assert.equal((await loadConfigFile(file)).settings.workers, 6);
  });
});

describe('loadConfigFile: errors', () => {
  it('unknown key, with a suggestion', async () => {
    const dir = tempDir({ 'c.json': '{ "worker": 2 }' });
    const file = path.join(dir, 'c.json');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
      `unknown setting \`worker\` in ${file}; did you mean \`workers\`?`);
  });

  it('unknown key in Gunicorn spelling suggests the promfork key', async () => {
    const dir = tempDir({ 'c.js': 'export const max_requests = 10;\n', 'd.yaml': 'on_starting: ./x.js\n' });
    await rejectsError(loadConfigFile(path.join(dir, 'c.js')), 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
      /^unknown setting `max_requests` in .*c\.js; did you mean `maxRequests`\?$/);
    await rejectsError(loadConfigFile(path.join(dir, 'd.yaml')), 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
      /^unknown setting `on_starting` in .*d\.yaml; did you mean `onStarting`\?$/);
  });

  it('unknown key with nothing close', async () => {
    const dir = tempDir({ 'c.yaml': 'zzzzzz: 1\n' });
    const file = path.join(dir, 'c.yaml');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
      `unknown setting \`zzzzzz\` in ${file}; see promfork --help for the settings`);
  });

  it('wrong type of value', async () => {
    const dir = tempDir({
      'a.js': "export default { workers: 'x' };\n",
      'b.json': '{ "workers": "4" }',
      'c.yaml': 'metrics: yes\n',
      'd.yaml': 'bind: [8000]\n',
      'e.js': "export const bind = ['127.0.0.1:1', 'h:99999'];\n",
      'f.json': '{ "timeout": -1 }',
      'g.json': '{ "workers": null }',
      'h.json': '{ "loglevel": "loud" }',
    });
    const f = (name: string) => path.join(dir, name);
    await rejectsError(loadConfigFile(f('a.js')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`workers\` in ${f('a.js')} expects an integer >= 1, got "x"`);
    await rejectsError(loadConfigFile(f('b.json')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`workers\` in ${f('b.json')} expects an integer >= 1, got "4"`);
    await rejectsError(loadConfigFile(f('c.yaml')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`metrics\` in ${f('c.yaml')} expects true or false, got "yes"`);
    await rejectsError(loadConfigFile(f('d.yaml')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`bind\` in ${f('d.yaml')} expects HOST:PORT, HOST, [IPV6]:PORT or unix:PATH, or a list of them, got [8000]`);
    await rejectsError(loadConfigFile(f('e.js')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`bind\` in ${f('e.js')} expects HOST:PORT, HOST, [IPV6]:PORT or unix:PATH, or a list of them, ` +
        `got ["127.0.0.1:1","h:99999"] ("h:99999": port 99999 is out of range 0..65535)`);
    await rejectsError(loadConfigFile(f('f.json')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`timeout\` in ${f('f.json')} expects a number between 0 and 2147483, got -1`);
    await rejectsError(loadConfigFile(f('g.json')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`workers\` in ${f('g.json')} expects an integer >= 1, got null`);
    await rejectsError(loadConfigFile(f('h.json')), 'PROMFORK_ERR_INVALID_VALUE',
      `setting \`loglevel\` in ${f('h.json')} expects one of debug, info, warning, error, critical, got "loud"`);
  });

  it('a hook that is not a function', async () => {
    const dir = tempDir({ 'c.js': 'export const onStarting = 42;\n' });
    const file = path.join(dir, 'c.js');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_INVALID_VALUE',
      `hook \`onStarting\` in ${file} expects a function or "MODULE:EXPORT", got 42`);
  });

  it('a hook string whose export is missing or not a function', async () => {
    const file = path.join(tempDir({ 'c.yaml': `onExit: ${fixture('hooks.js')}:notAFunction\n` }), 'c.yaml');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_INVALID_VALUE',
      `hook \`onExit\` in ${file}: "${fixture('hooks.js')}:notAFunction" does not export a function \`notAFunction\``);
  });

  it('a hook string whose module is missing', async () => {
    const file = path.join(tempDir({ 'c.yaml': 'onExit: ./nope.js:onExit\n' }), 'c.yaml');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
      /^cannot load config file .*c\.yaml: hook `onExit` module "\.\/nope\.js": Error: Cannot find module/);
  });

  it('a missing file', async () => {
    const file = path.join(tempDir(), 'missing.js');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE', `cannot load config file ${file}: file not found`);
  });

  it('an unsupported extension', async () => {
    const file = path.join(tempDir({ 'c.toml': 'workers = 2\n' }), 'c.toml');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${file}: unsupported extension ".toml"; use one of .js .mjs .cjs .json .yaml .yml`);
  });

  it('a syntax error in .js, .mjs and .cjs, with file:line', async () => {
    const bad = 'export default {\n  workers: 2\n  threads: 2\n};\n';
    const dir = tempDir({ 'a.js': bad, 'b.mjs': bad, 'c.cjs': bad.replace('export default', 'module.exports =') });
    for (const name of ['a.js', 'b.mjs', 'c.cjs']) {
      const file = path.join(dir, name);
      await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
        `cannot load config file ${file}: SyntaxError at ${file}:3: Unexpected identifier 'threads'`);
    }
  });

  it('a syntax error in .json and .yaml, with file:line:col', async () => {
    const dir = tempDir({ 'c.json': '{\n  "workers": 2\n  "threads": 2\n}\n', 'c.yaml': 'workers: 2\nbind: [a,\n' });
    const json = path.join(dir, 'c.json');
    await rejectsError(loadConfigFile(json), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${json}: SyntaxError at ${json}:3:3: Expected ',' or '}' after property value`);
    const yaml = path.join(dir, 'c.yaml');
    await rejectsError(loadConfigFile(yaml), 'PROMFORK_ERR_CONFIG_FILE',
      new RegExp(`^cannot load config file ${yaml}: SyntaxError at ${yaml}:\\d+:\\d+: `));
  });

  it('a file that throws, with the first line of its message and where', async () => {
    const dir = tempDir({ 'c.js': 'const x = 1;\nthrow new TypeError(`bad ${x}\\nsecond line`);\n' });
    const file = path.join(dir, 'c.js');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${file}: TypeError: bad 1 (at ${file}:2:7)`);
  });

  it('a file that throws a non-Error', async () => {
    const file = path.join(tempDir({ 'c.cjs': "throw 'nope';\n" }), 'c.cjs');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE', `cannot load config file ${file}: threw "nope"`);
  });

  it('a default export that is not an object', async () => {
    const file = path.join(tempDir({ 'c.js': 'export default () => ({});\n' }), 'c.js');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${file}: the default export must be an object of settings, got a function`);
  });

  it('a JSON/YAML top level that is not a mapping', async () => {
    const file = path.join(tempDir({ 'c.json': '[1, 2]' }), 'c.json');
    await rejectsError(loadConfigFile(file), 'PROMFORK_ERR_CONFIG_FILE',
      `cannot load config file ${file}: the top level must be a mapping of settings, got [1,2]`);
  });
});
