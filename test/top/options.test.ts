// promfork top's options: defaults, the URL forms, auth headers, and one error line per mistake.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ErrorCode } from '../../src/errors.js';
import { PromforkError } from '../../src/errors.js';
import { parseTopArgs } from '../../src/top/options.js';

function fails(argv: string[], code: ErrorCode, line: string, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parseTopArgs(argv, env),
    (err: unknown) => {
      assert.ok(err instanceof PromforkError, String(err));
      assert.equal(err.toLine(), `Error: ${line} [${code}]`);
      return true;
    },
  );
}

describe('parseTopArgs', () => {
  it('defaults: port 9090 (or PROMETHEUS_METRICS_PORT) on loopback, every second, namespace gunicorn', () => {
    const o = parseTopArgs([], {});
    assert.equal(o.url.href, 'http://127.0.0.1:9090/metrics');
    assert.deepEqual([o.intervalSeconds, o.once, o.namespace, o.help], [1, false, 'gunicorn', false]);
    assert.deepEqual(o.fetch, { headers: {}, timeoutMs: 5000, insecure: false, ca: undefined, cert: undefined, key: undefined, credentials: false });
    assert.equal(parseTopArgs([], { PROMETHEUS_METRICS_PORT: '9191' }).url.href, 'http://127.0.0.1:9191/metrics');
  });

  it('every option, in --opt value and --opt=value forms', () => {
    const o = parseTopArgs(['--url=https://m.example:8443/custom', '--interval', '0.5', '--once', '--namespace=myapp', '--timeout', '2', '--insecure', '--header', 'X-Tenant: a:b', '-h'], {});
    assert.equal(o.url.href, 'https://m.example:8443/custom');
    assert.deepEqual([o.intervalSeconds, o.once, o.namespace, o.help], [0.5, true, 'myapp', true]);
    assert.deepEqual([o.fetch.timeoutMs, o.fetch.insecure, o.fetch.headers, o.fetch.credentials], [2000, true, { 'X-Tenant': 'a:b' }, false]);
  });

  it('URL forms: HOST:PORT is http, no path is /metrics', () => {
    assert.equal(parseTopArgs(['--url', '10.0.0.5:9090'], {}).url.href, 'http://10.0.0.5:9090/metrics');
    assert.equal(parseTopArgs(['--url', 'http://[::1]:9090'], {}).url.href, 'http://[::1]:9090/metrics');
    assert.equal(parseTopArgs(['--url', 'http://h:1/'], {}).url.href, 'http://h:1/');
  });

  it('auth: bearer token, basic auth, an Authorization header; credentials in the URL count too', () => {
    assert.deepEqual(parseTopArgs(['--bearer-token', 's3cret'], {}).fetch.headers, { Authorization: 'Bearer s3cret' });
    const basic = parseTopArgs(['--basic-auth', 'prom:pa:ss'], {}).fetch;
    assert.deepEqual(basic.headers, { Authorization: `Basic ${Buffer.from('prom:pa:ss').toString('base64')}` });
    assert.equal(basic.credentials, true);
    assert.deepEqual(parseTopArgs(['--header', 'Authorization: Bearer x'], {}).fetch.headers, { Authorization: 'Bearer x' });
    assert.equal(parseTopArgs(['--url', 'http://u:p@h:1/metrics'], {}).fetch.credentials, true);
  });

  it('TLS files are read at start', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-top-'));
    writeFileSync(path.join(dir, 'ca.pem'), 'CA');
    const o = parseTopArgs(['--cacert', path.join(dir, 'ca.pem')], {});
    assert.equal(o.fetch.ca?.toString(), 'CA');
    const missing = path.join(dir, 'missing.pem');
    fails(['--cacert', missing], 'PROMFORK_ERR_INVALID_VALUE', `--cacert ${missing}: cannot read it (ENOENT)`);
    fails(['--cert', path.join(dir, 'ca.pem')], 'PROMFORK_ERR_INVALID_VALUE', '--cert needs --key too: a client certificate and its key');
    rmSync(dir, { recursive: true, force: true });
  });

  it('mistakes: one line each, with the code and the fix', () => {
    fails(['--intervl', '2'], 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option --intervl for promfork top; did you mean --interval?');
    fails(['-x'], 'PROMFORK_ERR_UNKNOWN_OPTION', 'unknown option -x for promfork top; see promfork top --help');
    fails(['http://h:1/metrics'], 'PROMFORK_ERR_EXTRA_ARGUMENT', 'unexpected argument "http://h:1/metrics"; give the endpoint with --url URL (see promfork top --help)');
    fails(['--url'], 'PROMFORK_ERR_MISSING_VALUE', '--url needs a value (see promfork top --help)');
    fails(['--url', '--once'], 'PROMFORK_ERR_MISSING_VALUE', '--url needs a value (see promfork top --help)');
    fails(['--once=yes'], 'PROMFORK_ERR_INVALID_VALUE', '--once takes no value, got "yes"; use --once alone');
    fails(['--interval', '0'], 'PROMFORK_ERR_INVALID_VALUE', '--interval "0" is invalid: expected a number of seconds >= 0.1');
    fails(['--timeout', 'soon'], 'PROMFORK_ERR_INVALID_VALUE', '--timeout "soon" is invalid: expected a number of seconds >= 0.1');
    fails(['--url', 'ftp://h/metrics'], 'PROMFORK_ERR_INVALID_VALUE', '--url "ftp://h/metrics" is invalid: only http:// and https:// are supported');
    fails(['--url', 'http://'], 'PROMFORK_ERR_INVALID_VALUE', '--url "http://" is invalid: expected http://HOST:PORT/metrics or https://...');
    fails([], 'PROMFORK_ERR_INVALID_VALUE', 'PROMETHEUS_METRICS_PORT "http://127.0.0.1:x/metrics" is invalid: expected http://HOST:PORT/metrics or https://...', { PROMETHEUS_METRICS_PORT: 'x' });
    fails(['--namespace', 'my-app'], 'PROMFORK_ERR_INVALID_VALUE', '--namespace "my-app" is invalid: expected a metric name prefix such as gunicorn');
    fails(['--header', 'no colon'], 'PROMFORK_ERR_INVALID_VALUE', `--header "no colon" is invalid: expected 'NAME: VALUE'`);
    fails(['--basic-auth', 'justuser'], 'PROMFORK_ERR_INVALID_VALUE', '--basic-auth "justuser" is invalid: expected USER:PASSWORD');
    fails(['--bearer-token', 't', '--basic-auth', 'u:p'], 'PROMFORK_ERR_INVALID_VALUE', '--bearer-token and --basic-auth both set the Authorization header; give one');
    fails(['--bearer-token', 't', '--header', 'authorization: x'], 'PROMFORK_ERR_INVALID_VALUE', "--bearer-token and --header 'Authorization: ...' both set the Authorization header; give one");
  });
});
