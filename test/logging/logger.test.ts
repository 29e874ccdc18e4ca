import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNullLogger, formatLogTime, Logger, nullLogger } from '../../src/logging/index.js';
import { PromforkError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-log-'));
const root = fileURLToPath(new URL('../../', import.meta.url));
const loggingModule = new URL('../../src/logging/index.ts', import.meta.url).href;
let seq = 0;
const tmpFile = () => path.join(tmp, `log-${++seq}.log`);
const read = (file: string) => fs.readFileSync(file, 'utf8');
const lines = (file: string) => read(file).split('\n').filter((l) => l !== '');

const LINE = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[(\d+)\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] (.*)$/;

const open: Logger[] = [];
function logger(opts: Partial<ConstructorParameters<typeof Logger>[0]> = {}): Logger {
  const l = new Logger({ errorlog: tmpFile(), loglevel: 'info', accesslog: null, ...opts });
  open.push(l);
  return l;
}

after(async () => {
  await Promise.all(open.map((l) => l.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Run ESM code in a child node process with the logging module imported as `m`. */
function runChild(code: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const src = `import * as m from ${JSON.stringify(loggingModule)};\n${code}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function withTZ<T>(tz: string, fn: () => T): T {
  const old = process.env.TZ;
  process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env.TZ;
    else process.env.TZ = old;
  }
}

describe('Logger', () => {
  test('line format is Gunicorn\'s: [time offset] [pid] [LEVEL] message', () => {
    const file = tmpFile();
    const l = logger({ errorlog: file, loglevel: 'debug' });
    l.debug('d');
    l.info('hello world');
    l.warning('w');
    l.error('e');
    l.critical('WORKER TIMEOUT (pid:12)');
    const got = lines(file).map((line) => {
      const m = LINE.exec(line);
      assert.ok(m, `bad line: ${line}`);
      return [Number(m[1]), m[2], m[3]];
    });
    assert.deepEqual(got, [
      [process.pid, 'DEBUG', 'd'],
      [process.pid, 'INFO', 'hello world'],
      [process.pid, 'WARNING', 'w'],
      [process.pid, 'ERROR', 'e'],
      [process.pid, 'CRITICAL', 'WORKER TIMEOUT (pid:12)'],
    ]);
  });

  test('timestamp is local time with the numeric UTC offset', () => {
    const d = new Date('2024-01-31T13:55:36Z');
    assert.equal(withTZ('UTC', () => formatLogTime(d)), '[2024-01-31 13:55:36 +0000]');
    assert.equal(withTZ('Asia/Kolkata', () => formatLogTime(d)), '[2024-01-31 19:25:36 +0530]');
    assert.equal(withTZ('America/New_York', () => formatLogTime(d)), '[2024-01-31 08:55:36 -0500]');
  });

  test('level filtering: critical > error > warning > info > debug', () => {
    const file = tmpFile();
    const l = logger({ errorlog: file, loglevel: 'warning' });
    l.debug('no-debug');
    l.info('no-info');
    l.warning('yes-warning');
    l.error('yes-error');
    l.critical('yes-critical');
    l.exception('yes-exception', 'x');
    assert.deepEqual(lines(file).map((x) => LINE.exec(x)?.[3]), ['yes-warning', 'yes-error', 'yes-critical', 'yes-exception: x']);
    assert.deepEqual(
      (['debug', 'info', 'warning', 'error', 'critical'] as const).map((lv) => l.isEnabledFor(lv)),
      [false, false, true, true, true],
    );
    const c = logger({ loglevel: 'critical' });
    assert.equal(c.isEnabledFor('error'), false);
    assert.equal(c.isEnabledFor('critical'), true);
  });

  test('an Error is appended as its stack on the following lines, anything else as ": value"', () => {
    const file = tmpFile();
    const l = logger({ errorlog: file });
    const err = new Error('kaboom');
    l.exception('Exception in worker process', err);
    l.error('Worker failed to boot', 'EADDRINUSE');
    l.warning('odd value', 42);
    l.info('no prototype', Object.create(null));
    const text = read(file);
    const [first, ...rest] = text.split('\n');
    assert.match(first, LINE);
    assert.equal(LINE.exec(first)?.[2], 'ERROR');
    assert.equal(LINE.exec(first)?.[3], 'Exception in worker process');
    assert.ok(rest.join('\n').startsWith(err.stack!), 'stack follows the message');
    const tail = lines(file).filter((x) => LINE.test(x)).slice(1).map((x) => LINE.exec(x)?.[3]);
    assert.deepEqual(tail, ['Worker failed to boot: EADDRINUSE', 'odd value: 42', 'no prototype: [Object: null prototype] {}']);
  });

  test('two Logger instances append to the same file; existing content is kept', () => {
    const file = tmpFile();
    fs.writeFileSync(file, 'existing\n');
    const a = logger({ errorlog: file });
    const b = logger({ errorlog: file });
    a.info('from a 1');
    b.info('from b 1');
    a.info('from a 2');
    const got = lines(file);
    assert.equal(got[0], 'existing');
    assert.deepEqual(got.slice(1).map((x) => LINE.exec(x)?.[3]), ['from a 1', 'from b 1', 'from a 2']);
  });

  test('two processes appending long lines to one file never interleave', async () => {
    const file = tmpFile();
    const code = (tag: string) => `
      const l = new m.Logger({ errorlog: ${JSON.stringify(file)}, loglevel: 'info', accesslog: ${JSON.stringify(file)} });
      for (let i = 0; i < 300; i++) { l.info('${tag}' + i + ' ' + '${tag}'.repeat(3000)); l.access('${tag}-access-' + i); }
      await l.close();`;
    const results = await Promise.all([runChild(code('A')), runChild(code('B'))]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const all = lines(file);
    assert.equal(all.length, 1200);
    const pids = new Set<string>();
    for (const line of all) {
      const access = /^([AB])-access-\d+$/.test(line);
      const m = LINE.exec(line);
      assert.ok(access || m, `corrupt line: ${line.slice(0, 80)}`);
      if (m) {
        pids.add(m[1]);
        const tag = m[3][0];
        assert.match(m[3], new RegExp(`^${tag}\\d+ ${tag}{3000}$`));
      }
    }
    assert.equal(pids.size, 2);
  });

  test('access lines go to the access log, whatever the level; "-" is stdout, error log "-" is stderr', async () => {
    const r = await runChild(`
      const l = new m.Logger({ errorlog: '-', loglevel: 'critical', accesslog: '-' });
      l.error('hidden'); l.critical('shown'); l.access('GET / 200');
      console.error('pid=' + process.pid);`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'GET / 200\n');
    const [line, pidLine] = r.stderr.trimEnd().split('\n');
    const m = LINE.exec(line);
    assert.ok(m, r.stderr);
    assert.deepEqual([m[1], m[2], m[3]], [pidLine.slice(4), 'CRITICAL', 'shown']);
  });

  test('access log to a file; none when accesslog is null', () => {
    const file = tmpFile();
    const l = logger({ accesslog: file, loglevel: 'critical' });
    assert.equal(l.accessEnabled, true);
    l.access('127.0.0.1 - - [x] "GET / HTTP/1.1" 200 5 "-" "-"');
    assert.equal(read(file), '127.0.0.1 - - [x] "GET / HTTP/1.1" 200 5 "-" "-"\n');
    const n = logger({ accesslog: null });
    assert.equal(n.accessEnabled, false);
    n.access('dropped');
  });

  test('reopen() after rotation: new lines go to a new file at the original path', () => {
    const file = tmpFile();
    const access = tmpFile();
    const l = logger({ errorlog: file, accesslog: access });
    l.info('before rotation');
    l.access('access 1');
    fs.renameSync(file, `${file}.1`);
    fs.renameSync(access, `${access}.1`);
    l.info('still to the renamed file');
    l.reopen();
    l.info('after reopen');
    l.access('access 2');
    assert.deepEqual(lines(`${file}.1`).map((x) => LINE.exec(x)?.[3]), ['before rotation', 'still to the renamed file']);
    assert.deepEqual(lines(file).map((x) => LINE.exec(x)?.[3]), ['after reopen']);
    assert.equal(read(`${access}.1`), 'access 1\n');
    assert.equal(read(access), 'access 2\n');
  });

  test('reopen() that cannot open the file keeps the old one and does not throw', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'gone-'));
    const file = path.join(dir, 'x.log');
    const l = logger({ errorlog: file });
    fs.renameSync(dir, `${dir}.old`);
    assert.doesNotThrow(() => l.reopen());
    l.info('kept');
    assert.deepEqual(lines(path.join(`${dir}.old`, 'x.log')).map((x) => LINE.exec(x)?.[2]), ['ERROR', 'INFO']);
    assert.equal(l.writeErrors, 0);
  });

  test('relative paths are resolved at setup, so reopen() after chdir keeps the file', () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    let l: Logger;
    try {
      l = logger({ errorlog: 'relative.log' });
    } finally {
      process.chdir(cwd);
    }
    l.reopen();
    l.info('after chdir');
    assert.equal(lines(path.join(tmp, 'relative.log')).length, 1);
  });

  for (const [option, key] of [['--error-logfile', 'errorlog'], ['--access-logfile', 'accesslog']] as const) {
    test(`unopenable ${option} path gives PromforkError PROMFORK_ERR_LOG_FILE naming the option`, () => {
      for (const bad of [path.join(tmp, 'no-such-dir', 'x.log'), tmp]) {
        assert.throws(
          () => new Logger({ errorlog: '-', loglevel: 'info', accesslog: null, [key]: bad }),
          (err: unknown) => {
            assert.ok(err instanceof PromforkError);
            assert.equal(err.code, 'PROMFORK_ERR_LOG_FILE');
            assert.equal(err.exitCode, 1);
            assert.ok(err.message.startsWith(`${option}: cannot open '${bad}'`), err.message);
            assert.match(err.message, /(ENOENT|EISDIR)/);
            return true;
          },
        );
      }
    });
  }

  test('setup() with a bad path throws and keeps the previous files', () => {
    const file = tmpFile();
    const l = logger({ errorlog: file });
    assert.throws(() => l.setup({ errorlog: file, loglevel: 'debug', accesslog: path.join(tmp, 'nope', 'a.log') }), PromforkError);
    l.debug('not enabled: level unchanged');
    l.info('still here');
    assert.deepEqual(lines(file).map((x) => LINE.exec(x)?.[3]), ['still here']);
  });

  test('setup() switches files and level (HUP)', () => {
    const first = tmpFile();
    const second = tmpFile();
    const l = logger({ errorlog: first });
    l.info('one');
    l.setup({ errorlog: second, loglevel: 'debug', accesslog: null });
    l.debug('two');
    assert.deepEqual(lines(first).map((x) => LINE.exec(x)?.[3]), ['one']);
    assert.deepEqual(lines(second).map((x) => LINE.exec(x)?.[3]), ['two']);
  });

  test('write errors after start are counted, never thrown', { skip: !fs.existsSync('/dev/full') }, () => {
    const l = logger({ errorlog: '/dev/full', accesslog: '/dev/full' });
    assert.doesNotThrow(() => {
      l.info('disk full');
      l.access('disk full');
      l.exception('disk full', new Error('x'));
    });
    assert.equal(l.writeErrors, 3);
  });

  test('close() stops writing and is idempotent', async () => {
    const file = tmpFile();
    const l = logger({ errorlog: file });
    l.info('before');
    await l.close();
    await l.close();
    l.info('after');
    l.reopen();
    assert.deepEqual(lines(file).map((x) => LINE.exec(x)?.[3]), ['before']);
    assert.equal(l.writeErrors, 0);
  });

  test('the null logger discards everything', () => {
    for (const l of [nullLogger, createNullLogger('debug')]) {
      l.critical('x', new Error('y'));
      l.access('z');
      l.reopen();
      assert.equal(l.writeErrors, 0);
      assert.equal(l.accessEnabled, false);
    }
    assert.equal(createNullLogger('debug').isEnabledFor('debug'), true);
  });
});
