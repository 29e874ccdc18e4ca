import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import os from 'node:os';
import { renderHelp, renderSettings } from '../../src/config/help.js';
import { CLI_OPTIONS, SETTINGS, defaultSettings } from '../../src/config/settings.js';

describe('renderHelp', () => {
  const help = renderHelp();

  it('starts with the usage line', () => {
    assert.equal(help.split('\n')[0], 'Usage: promfork [options] MODULE[:EXPORT]');
  });

  it('names the subcommands', () => {
    assert.ok(help.includes('\nSubcommands (each has --help):\n  promfork exporter [options] '));
    assert.ok(help.includes('\n  promfork top [options] '));
  });

  it('lists every flag of the table, with --no-metrics', () => {
    for (const def of SETTINGS) for (const flag of def.flags) assert.match(help, new RegExp(`(^|[ ,])${flag}[ ,\n]`, 'm'), flag);
    for (const opt of CLI_OPTIONS) for (const flag of opt.flags) assert.ok(help.includes(flag), flag);
    assert.ok(help.includes('  --metrics, --no-metrics\n'));
  });

  it('shows metavars, defaults and config keys', () => {
    assert.ok(help.includes('  -w, --workers N\n      Number of worker processes.\n' +
      '      Default: $WEB_CONCURRENCY, else $GUNICORN_WORKERS, else 1. Config key: workers.\n'));
    assert.ok(help.includes('  -b, --bind ADDR\n'));
    assert.ok(help.includes('Default: 0.0.0.0:$PORT when $PORT is set, else 127.0.0.1:8000. Config key: bind.'));
    assert.ok(help.includes('Default: $PROMETHEUS_METRICS_PORT, else 9090. Config key: metricsPort.'));
    assert.ok(help.includes('Default: 2048. Config key: backlog.'));
    assert.ok(help.includes('  -c, --config FILE\n'));
    assert.ok(help.includes('  --check-config\n'));
    assert.ok(help.includes('  -h, --help\n'));
    assert.ok(help.includes('  -v, --version\n'));
  });
});

describe('renderSettings', () => {
  it('prints one key = value line per setting, in table order', () => {
    assert.equal(renderSettings(defaultSettings({})), [
      'app = null',
      'bind = ["127.0.0.1:8000"]',
      'workers = 1',
      'workerClass = "async"',
      'threads = 1',
      'workerConnections = 1000',
      'maxRequests = 0',
      'maxRequestsJitter = 0',
      'timeout = 30',
      'gracefulTimeout = 30',
      'keepalive = 2',
      'backlog = 2048',
      'pidfile = null',
      'accesslog = null',
      'accessLogFormat = "%(h)s %(l)s %(u)s %(t)s \\"%(r)s\\" %(s)s %(b)s \\"%(f)s\\" \\"%(a)s\\""',
      'errorlog = "-"',
      'loglevel = "info"',
      'procName = "promfork"',
      'chdir = "."',
      'metricsPort = 9090',
      'metricsBind = "0.0.0.0"',
      'multiprocDir = "/tmp/prometheus_multiproc"',
      'metrics = true',
      'metricsNamespace = "gunicorn"',
      'metricsFlushInterval = 1',
      'scrapeTimeout = 0.25',
      'endpointCap = 100',
      'metricsCertfile = null',
      'metricsKeyfile = null',
      'metricsCaCerts = null',
      'metricsCaPath = null',
      'metricsBasicAuth = null',
      'metricsBearerToken = null',
      'redisEnabled = false',
      'redisHost = "localhost"',
      'redisPort = 6379',
      'redisDb = 0',
      'redisKeyPrefix = "gunicorn"',
      'redisPassword = null',
      'redisUrl = null',
      'redisSentinelMaster = null',
      'redisSentinelPassword = null',
      'redisCluster = false',
      `metricsInstance = ${JSON.stringify(os.hostname())}`,
      'allInstances = false',
      '',
    ].join('\n'));
  });

  it('masks secrets', () => {
    const s = { ...defaultSettings({}), metricsBasicAuth: 'admin:hunter2', metricsBearerToken: 'tok' };
    const out = renderSettings(s);
    assert.match(out, /^metricsBasicAuth = "\*{8}"$/m);
    assert.match(out, /^metricsBearerToken = "\*{8}"$/m);
    assert.doesNotMatch(out, /hunter2|tok"/);
  });
});
