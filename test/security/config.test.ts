// Rejected values and secrets. Every rejected value is one line naming the setting (or variable) and what it
// expects, with a stable code, exit status 1 and nothing started; the same checks apply to a value from the
// command line, an environment variable and --check-config; no secret appears in any output.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { APP, CLI, ROOT } from '../helpers/server.js';

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (/^(PROMFORK_|PROMETHEUS_|REDIS_|GUNICORN_|PORT$|WEB_CONCURRENCY$)/.test(k)) delete base[k];
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Exit 1, exactly one line `Error: ... [CODE]` matching `line`, nothing started, and none of `secrets` shown. */
function assertRejected(r: { status: number | null; out: string }, line: RegExp, secrets: string[] = []): void {
  assert.equal(r.status, 1, r.out);
  const lines = r.out.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, r.out);
  assert.match(lines[0]!, /^Error: .* \[PROMFORK_ERR_[A-Z_]+\]$/);
  assert.match(lines[0]!, line);
  for (const s of secrets) assert.ok(!r.out.includes(s), `the secret ${s} is not shown: ${r.out}`);
}

const BIND = ['-b', '127.0.0.1:0', '--no-metrics'];

test('--keep-alive 300 and more is refused at configuration time, not by every worker at boot', () => {
  for (const args of [['--keep-alive', '300'], ['--check-config', '--keep-alive', '300']]) {
    assertRejected(run([...args, ...BIND, APP]), /^Error: --keep-alive expects a number between 0 and 299, got "300"/);
  }
});

test('a duration past what a Node timer holds (2^31-1 ms) is refused for every duration setting and source', () => {
  const flags = ['--timeout', '--graceful-timeout', '--keep-alive', '--metrics-flush-interval', '--scrape-timeout'];
  for (const flag of flags) {
    const r = run([flag, '1e20', ...BIND, APP]);
    assertRejected(r, new RegExp(`^Error: ${flag} expects a number between [0-9.]+ and \\d+, got "1e20"`));
  }
  assertRejected(run([...BIND, APP], { PROMFORK_CMD_ARGS: '--graceful-timeout 2147484' }), /--graceful-timeout in PROMFORK_CMD_ARGS expects a number between 0 and 2147483/);
  // The longest accepted value works (it is not cut to 1 ms).
  const ok = run(['--check-config', '--graceful-timeout', '2147483', ...BIND, APP]);
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /gracefulTimeout.*2147483/);
});

test('secrets are never printed: a bad --redis-url, --metrics-basic-auth, a broken PROMFORK_CMD_ARGS, a REDIS_URL whose password holds @', () => {
  assertRejected(run(['--redis-url', 'http://u:s3cr3t-a@h:1/0', ...BIND, APP]), /^Error: --redis-url expects a redis:\/\/, redis\+sentinel:\/\/ or redis\+cluster:\/\/ URL/, ['s3cr3t-a']);
  assertRejected(run(['--metrics-basic-auth', 's3cr3t-b-without-colon', ...BIND, APP]), /^Error: --metrics-basic-auth expects USER:PASSWORD/, ['s3cr3t-b']);
  assertRejected(
    run([...BIND, APP], { PROMFORK_CMD_ARGS: "--redis-password 's3cr3t-c" }),
    /^Error: PROMFORK_CMD_ARGS has an unterminated ' quote at character 18/,
    ['s3cr3t-c'],
  );
  assertRejected(
    run(['-b', '127.0.0.1:0', '--metrics-bind', '127.0.0.1', '--metrics-port', '0', APP], {
      REDIS_ENABLED: '1',
      REDIS_URL: 'redis://user:s3cr3t@d@host:99999/0',
    }),
    /^Error: REDIS_URL redis:\/\/user:\*\*\*\*@host:99999\/0: port 99999 of "host:99999" is not 1-65535/,
    ['s3cr3t', 'cr3t@d', 'd@host'],
  );
});

test('values from environment variables get the checks command-line values get, --check-config included', () => {
  for (const args of [[], ['--check-config']]) {
    assertRejected(
      run([...args, ...BIND, APP], { PROMFORK_METRICS_BASIC_AUTH: 's3cr3t-d' }),
      /^Error: environment variable PROMFORK_METRICS_BASIC_AUTH expects USER:PASSWORD, got a value that is not shown/,
      ['s3cr3t-d'],
    );
    assertRejected(
      run([...args, ...BIND, APP], { REDIS_URL: 'http://u:s3cr3t-e@h/0' }),
      /^Error: environment variable REDIS_URL expects a redis:\/\/, redis\+sentinel:\/\/ or redis\+cluster:\/\/ URL/,
      ['s3cr3t-e'],
    );
  }
});
