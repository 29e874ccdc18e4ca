import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs } from '../../src/config/parse-args.js';
import { throwsError } from './helpers.js';

const values = (argv: string[]) => parseArgs(argv).values;

describe('parseArgs: every option', () => {
  const cases: [string[], Record<string, unknown>][] = [
    [['-b', '0.0.0.0:80'], { bind: ['0.0.0.0:80'] }],
    [['--bind', 'unix:/tmp/s.sock'], { bind: ['unix:/tmp/s.sock'] }],
    [['-w', '4'], { workers: 4 }],
    [['--workers', '4'], { workers: 4 }],
    [['-k', 'sync'], { workerClass: 'sync' }],
    [['--worker-class', 'thread'], { workerClass: 'thread' }],
    [['--threads', '3'], { threads: 3 }],
    [['--worker-connections', '50'], { workerConnections: 50 }],
    [['--max-requests', '1000'], { maxRequests: 1000 }],
    [['--max-requests-jitter', '0'], { maxRequestsJitter: 0 }],
    [['-t', '0'], { timeout: 0 }],
    [['--timeout', '2.5'], { timeout: 2.5 }],
    [['--graceful-timeout', '10'], { gracefulTimeout: 10 }],
    [['--keep-alive', '0.5'], { keepalive: 0.5 }],
    [['--backlog', '64'], { backlog: 64 }],
    [['-p', 'run/promfork.pid'], { pidfile: 'run/promfork.pid' }],
    [['--pid', '/run/p.pid'], { pidfile: '/run/p.pid' }],
    [['--access-logfile', '-'], { accesslog: '-' }],
    [['--access-logformat', '%(h)s %(r)s'], { accessLogFormat: '%(h)s %(r)s' }],
    [['--error-logfile', 'err.log'], { errorlog: 'err.log' }],
    [['--log-level', 'debug'], { loglevel: 'debug' }],
    [['--log-level', 'WARNING'], { loglevel: 'warning' }],
    [['-n', 'shop'], { procName: 'shop' }],
    [['--name', 'shop'], { procName: 'shop' }],
    [['--chdir', '/srv/app'], { chdir: '/srv/app' }],
    [['--metrics-port', '0'], { metricsPort: 0 }],
    [['--metrics-bind', '127.0.0.1'], { metricsBind: '127.0.0.1' }],
    [['--multiproc-dir', '/var/tmp/m'], { multiprocDir: '/var/tmp/m' }],
    [['--metrics'], { metrics: true }],
    [['--no-metrics'], { metrics: false }],
  ];
  for (const [argv, expected] of cases) {
    it(argv.join(' '), () => assert.deepEqual(values(argv), expected));
  }
});

describe('parseArgs: forms', () => {
  it('accepts --opt=value, attached short values and -w=4', () => {
    assert.deepEqual(values(['--workers=4', '-t5', '-k=sync', '--bind=[::1]:80']), {
      workers: 4,
      timeout: 5,
      workerClass: 'sync',
      bind: ['[::1]:80'],
    });
  });

  it('keeps an empty-looking `=` value intact', () => {
    assert.deepEqual(values(['--access-logformat=a=b']), { accessLogFormat: 'a=b' });
  });

  it('collects a repeated --bind in order', () => {
    assert.deepEqual(values(['-b', 'a:1', '--bind', 'b:2', '--bind=unix:/s']), { bind: ['a:1', 'b:2', 'unix:/s'] });
  });

  it('lets the last of a repeated scalar option win', () => {
    assert.deepEqual(values(['-w', '2', '--workers', '3', '--no-metrics', '--metrics']), { workers: 3, metrics: true });
  });

  it('takes the app from the one positional, before, between or after options', () => {
    assert.equal(parseArgs(['app.js:app']).app, 'app.js:app');
    assert.equal(parseArgs(['-w', '2', 'app.js', '--threads', '2']).app, 'app.js');
    assert.equal(parseArgs(['-w', '2']).app, undefined);
  });

  it('treats everything after -- as positional', () => {
    const r = parseArgs(['-w', '2', '--', '--weird.js']);
    assert.equal(r.app, '--weird.js');
    assert.deepEqual(r.values, { workers: 2 });
  });

  it('returns the non-setting flags separately', () => {
    assert.deepEqual(parseArgs(['-c', 'conf.js', '--check-config', 'app.js']), {
      values: {}, config: 'conf.js', checkConfig: true, help: false, version: false, app: 'app.js',
    });
    assert.equal(parseArgs(['--config=x.yaml']).config, 'x.yaml');
    assert.equal(parseArgs(['-h']).help, true);
    assert.equal(parseArgs(['--help']).help, true);
    assert.equal(parseArgs(['-v']).version, true);
    assert.equal(parseArgs(['--version']).version, true);
  });

  it('reads a negative number as a value, so its range error is precise', () => {
    throwsError(() => parseArgs(['--max-requests', '-1']), 'PROMFORK_ERR_INVALID_VALUE',
      '--max-requests expects an integer >= 0, got "-1"');
  });
});

describe('parseArgs: errors', () => {
  it('unknown option, with the closest flag', () => {
    throwsError(() => parseArgs(['--worker', '3']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --worker; did you mean --workers?');
    throwsError(() => parseArgs(['--keepalive=3']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --keepalive; did you mean --keep-alive?');
    throwsError(() => parseArgs(['--pidfile', 'x']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --pidfile; did you mean --pid?');
    throwsError(() => parseArgs(['--no-metric']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --no-metric; did you mean --no-metrics?');
  });

  it('unknown option with nothing close', () => {
    throwsError(() => parseArgs(['--frobnicate']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --frobnicate; see promfork --help for the options');
    throwsError(() => parseArgs(['-x']), 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option -x; see promfork --help for the options');
  });

  it('--no-X exists only for boolean settings', () => {
    throwsError(() => parseArgs(['--no-workers']), 'PROMFORK_ERR_UNKNOWN_OPTION', /^unknown option --no-workers;/);
  });

  it('missing value, at the end or before another option', () => {
    throwsError(() => parseArgs(['--workers']), 'PROMFORK_ERR_MISSING_VALUE', '--workers needs a value: --workers N');
    throwsError(() => parseArgs(['-b', '--workers', '2']), 'PROMFORK_ERR_MISSING_VALUE', '-b needs a value: -b ADDR');
    throwsError(() => parseArgs(['-c']), 'PROMFORK_ERR_MISSING_VALUE', '-c needs a value: -c FILE');
  });

  it('wrong type, out of range, bad choice', () => {
    throwsError(() => parseArgs(['--workers', 'abc']), 'PROMFORK_ERR_INVALID_VALUE', '--workers expects an integer >= 1, got "abc"');
    throwsError(() => parseArgs(['-w', '0']), 'PROMFORK_ERR_INVALID_VALUE', '-w (--workers) expects an integer >= 1, got "0"');
    throwsError(() => parseArgs(['--threads=1.5']), 'PROMFORK_ERR_INVALID_VALUE', '--threads expects an integer >= 1, got "1.5"');
    throwsError(() => parseArgs(['--timeout', '3s']), 'PROMFORK_ERR_INVALID_VALUE', '--timeout expects a number between 0 and 2147483, got "3s"');
    throwsError(() => parseArgs(['--metrics-port', '65536']), 'PROMFORK_ERR_INVALID_VALUE',
      '--metrics-port expects an integer between 0 and 65535, got "65536"');
    throwsError(() => parseArgs(['--log-level', 'verbose']), 'PROMFORK_ERR_INVALID_VALUE',
      '--log-level expects one of debug, info, warning, error, critical, got "verbose"');
    throwsError(() => parseArgs(['--name=']), 'PROMFORK_ERR_INVALID_VALUE', '--name expects a non-empty string, got ""');
  });

  it('a bad bind address says what is wrong with it', () => {
    throwsError(() => parseArgs(['-b', 'localhost:http']), 'PROMFORK_ERR_INVALID_VALUE',
      '-b (--bind) expects HOST:PORT, HOST, [IPV6]:PORT or unix:PATH, got "localhost:http" ("http" is not a port number)');
    throwsError(() => parseArgs(['--bind', '::1:80']), 'PROMFORK_ERR_INVALID_VALUE',
      /^--bind expects .*, got "::1:80" \(an IPv6 address must be in brackets, e\.g\. \[::1\]:8000\)$/);
  });

  it('a flag that takes no value rejects one', () => {
    throwsError(() => parseArgs(['--metrics=false']), 'PROMFORK_ERR_INVALID_VALUE',
      '--metrics takes no value, got "false"; use --metrics or --no-metrics');
    throwsError(() => parseArgs(['--check-config=yes']), 'PROMFORK_ERR_INVALID_VALUE',
      '--check-config takes no value, got "yes"; use --check-config alone');
  });

  it('more than one positional', () => {
    throwsError(() => parseArgs(['a.js', 'b.js']), 'PROMFORK_ERR_EXTRA_ARGUMENT',
      'unexpected argument "b.js": the app is already "a.js"; give one MODULE[:EXPORT]');
  });

  it('names the source when given one', () => {
    throwsError(() => parseArgs(['--workers', 'abc'], 'PROMFORK_CMD_ARGS'), 'PROMFORK_ERR_INVALID_VALUE',
      '--workers in PROMFORK_CMD_ARGS expects an integer >= 1, got "abc"');
    throwsError(() => parseArgs(['--worker'], 'PROMFORK_CMD_ARGS'), 'PROMFORK_ERR_UNKNOWN_OPTION',
      'unknown option --worker in PROMFORK_CMD_ARGS; did you mean --workers?');
    throwsError(() => parseArgs(['-w'], 'PROMFORK_CMD_ARGS'), 'PROMFORK_ERR_MISSING_VALUE',
      '-w in PROMFORK_CMD_ARGS needs a value: -w N');
  });
});
