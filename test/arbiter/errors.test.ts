// Bad input, each through the real CLI as a user would type it: Gunicorn's exit status (1 configuration,
// 3 worker boot error, 4 app load error), one `Error: ... [PROMFORK_ERR_...]` line naming what to fix,
// and no stack trace for a user's mistake. Nothing here sleeps: every wait is on a process exit or a
// log line, with a deadline.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ErrorCode } from '../../src/errors.js';
import { APP, FIXTURES, PromforkProcess, ROOT, request, startServer } from '../helpers/server.js';

const BIND = ['-b', '127.0.0.1:0'];
const BEHAVIOURS = path.join('test', 'fixtures', 'apps', 'behaviours.js');
const ERRORS = path.join(FIXTURES, 'errors');
const STACK_LINE = /^\s+at /m;

/** Wait for the process to exit; past the deadline, kill it (by pid) and fail with its output. */
async function exitOf(p: PromforkProcess, timeoutMs = 20_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void p.stop(1000);
      reject(new Error(`promfork did not exit within ${timeoutMs} ms; output:\n${p.output}`));
    }, timeoutMs);
  });
  try {
    const { code, signal } = await Promise.race([p.exited, deadline]);
    assert.equal(signal, null, `killed by ${signal}; output:\n${p.output}`);
    return code;
  } finally {
    clearTimeout(timer);
  }
}

interface Failure {
  /** The process exit status. */
  code: number;
  /** The stable code that ends the `Error:` line. */
  error: ErrorCode;
  /** What the `Error:` line must say (the setting, file or value). */
  line: RegExp;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * A failure before the server starts: exit `code`, exactly one line starting with `Error:`, which matches
 * `line` and ends with `[error]`, no stack trace, and no worker ever forked.
 */
async function expectFailure(args: string[], f: Failure): Promise<PromforkProcess> {
  const p = new PromforkProcess(args, { env: f.env });
  const code = await exitOf(p, f.timeoutMs);
  assert.equal(code, f.code, `exit status; output:\n${p.output}`);
  const errorLines = p.output.split('\n').filter((l) => l.startsWith('Error:'));
  assert.equal(errorLines.length, 1, `exactly one Error: line; output:\n${p.output}`);
  assert.match(errorLines[0], f.line);
  assert.ok(errorLines[0].endsWith(` [${f.error}]`), `ends with [${f.error}]: ${errorLines[0]}`);
  assert.doesNotMatch(p.output, STACK_LINE, 'no stack trace for a user mistake');
  assert.doesNotMatch(p.output, /Booting worker/);
  return p;
}

interface WorkerFailure extends Failure {
  /** The primary's `Reason:` line. */
  reason: string;
  /** The app's own exception is shown with its stack (its import threw); otherwise no stack at all. */
  appStack?: boolean;
}

/**
 * A worker that fails to boot: its one `Error:` log record (from the worker's pid) matching `line`, then the
 * primary's `Shutting down: Master` and `Reason: ...` and exit `code`.
 */
async function expectBootFailure(args: string[], f: WorkerFailure): Promise<PromforkProcess> {
  const p = new PromforkProcess(args, { env: f.env });
  const code = await exitOf(p, f.timeoutMs);
  assert.equal(code, f.code, `exit status; output:\n${p.output}`);
  const records = [...p.output.matchAll(/^\[[^\]]+\] \[(\d+)\] \[ERROR\] (Error: .*)$/gm)];
  assert.equal(records.length, 1, `exactly one Error: record; output:\n${p.output}`);
  const [, workerPid, errorLine] = records[0];
  assert.notEqual(Number(workerPid), p.pid, 'the Error: record comes from the worker');
  assert.match(p.output, new RegExp(`\\[${workerPid}\\] \\[INFO\\] Booting worker with pid: ${workerPid}\\n`));
  assert.match(errorLine, f.line);
  assert.ok(errorLine.endsWith(` [${f.error}]`), `ends with [${f.error}]: ${errorLine}`);
  const primary = `\\[${p.pid}\\] \\[INFO\\]`;
  assert.match(p.output, new RegExp(`${primary} Shutting down: Master\\n.*${primary} Reason: ${literal(f.reason)}\\n`));
  if (!f.appStack) assert.doesNotMatch(p.output, STACK_LINE, 'no stack trace for a user mistake');
  return p;
}

function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---- 1-3, 11, 12: the command line, config files and the environment ----

test('an unknown option exits 1 and suggests the right one', async () => {
  await expectFailure(['--wrokers', '2', ...BIND, APP], {
    code: 1,
    error: 'PROMFORK_ERR_UNKNOWN_OPTION',
    line: /^Error: unknown option --wrokers; did you mean --workers\?/,
  });
});

test('an unknown key in a JS config file exits 1 naming the key and the file', async () => {
  const file = path.join(ERRORS, 'typo-key.config.js');
  await expectFailure(['-c', file, ...BIND, APP], {
    code: 1,
    error: 'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
    line: new RegExp(`^Error: unknown setting \`wrokers\` in ${literal(file)}; did you mean \`workers\`\\?`),
  });
});

test('a value of the wrong type exits 1 naming the option, key or environment variable', async (t) => {
  await t.test('--workers abc', async () => {
    await expectFailure(['--workers', 'abc', ...BIND, APP], {
      code: 1,
      error: 'PROMFORK_ERR_INVALID_VALUE',
      line: /^Error: --workers expects an integer >= 1, got "abc"/,
    });
  });
  await t.test('--timeout -1', async () => {
    await expectFailure(['--timeout', '-1', ...BIND, APP], {
      code: 1,
      error: 'PROMFORK_ERR_INVALID_VALUE',
      line: /^Error: --timeout expects a number between 0 and 2147483, got "-1"/,
    });
  });
  await t.test('workers: "two" in a YAML config', async () => {
    const file = path.join(ERRORS, 'workers-string.yaml');
    await expectFailure(['-c', file, ...BIND, APP], {
      code: 1,
      error: 'PROMFORK_ERR_INVALID_VALUE',
      line: new RegExp(`^Error: setting \`workers\` in ${literal(file)} expects an integer >= 1, got "two"`),
    });
  });
  await t.test('WEB_CONCURRENCY=abc', async () => {
    await expectFailure([...BIND, APP], {
      env: { WEB_CONCURRENCY: 'abc' },
      code: 1,
      error: 'PROMFORK_ERR_INVALID_VALUE',
      line: /^Error: environment variable WEB_CONCURRENCY expects an integer >= 1, got "abc"/,
    });
  });
});

test('an unknown --worker-class exits 1 naming the value', async () => {
  await expectFailure(['--worker-class', 'nosuch', ...BIND, APP], {
    code: 1,
    error: 'PROMFORK_ERR_WORKER_CLASS',
    line: /^Error: --worker-class "nosuch" is neither a built-in class \(sync, async, .*\) nor an existing module file/,
  });
});

test('a --bind port out of range exits 1 naming the option and the value', async () => {
  await expectFailure(['-b', '127.0.0.1:99999', APP], {
    code: 1,
    error: 'PROMFORK_ERR_INVALID_VALUE',
    line: /^Error: -b \(--bind\) expects .*, got "127\.0\.0\.1:99999" \(port 99999 is out of range 0\.\.65535\)/,
  });
});

// ---- 4-6, 10: the app and the worker boot ----

test('a missing app module exits 3 from the primary, before any fork', async () => {
  const p = await expectFailure([...BIND, 'nope.js'], {
    code: 3,
    error: 'PROMFORK_ERR_APP_IMPORT',
    line: new RegExp(`^Error: app module "nope\\.js" not found \\(looked in ${literal(ROOT)}\\)`),
  });
  assert.equal(p.output.trim().split('\n').length, 1, `one line only; output:\n${p.output}`);
});

test('no app at all exits 1 with a usage hint', async () => {
  const p = await expectFailure([], {
    code: 1,
    error: 'PROMFORK_ERR_NO_APP',
    line: /^Error: no app given: pass MODULE\[:EXPORT\] on the command line \(e\.g\. promfork app\.js\)/,
  });
  assert.equal(p.output.trim().split('\n').length, 1, `one line only; output:\n${p.output}`);
});

test('a module without the named export exits 4: App failed to load', async () => {
  await expectBootFailure([...BIND, `${BEHAVIOURS}:missing`], {
    code: 4,
    error: 'PROMFORK_ERR_APP_EXPORT',
    line: new RegExp(`^Error: ${literal(path.join(ROOT, BEHAVIOURS))} has no export "missing" \\(it exports: app, notAnApp\\)`),
    reason: 'App failed to load.',
  });
});

test('an export that is not an app exits 4: App failed to load', async () => {
  await expectBootFailure([...BIND, `${BEHAVIOURS}:notAnApp`], {
    code: 4,
    error: 'PROMFORK_ERR_APP_EXPORT',
    line: new RegExp(`^Error: export "notAnApp" of ${literal(path.join(ROOT, BEHAVIOURS))} is not an app`),
    reason: 'App failed to load.',
  });
});

test("an app that throws at import exits 3 and shows the app's own stack", async () => {
  const file = path.join(ROOT, 'test', 'fixtures', 'apps', 'throws-on-import.js');
  const p = await expectBootFailure([...BIND, path.relative(ROOT, file)], {
    code: 3,
    error: 'PROMFORK_ERR_APP_IMPORT',
    line: new RegExp(`^Error: app module ${literal(file)} failed to load: the app failed at import time`),
    reason: 'Worker failed to boot.',
    appStack: true,
  });
  // The app's bug: its exception with the stack pointing into the app.
  assert.match(p.output, /^Error: the app failed at import time\n\s+at .*throws-on-import\.js:1:\d+/m);
});

test('an app exported as a promise that rejects exits 3 and shows the app\'s own stack', async () => {
  const file = path.join(ROOT, 'test', 'fixtures', 'apps', 'rejected-app.cjs');
  const p = await expectBootFailure([...BIND, path.relative(ROOT, file)], {
    code: 3,
    error: 'PROMFORK_ERR_APP_IMPORT',
    line: new RegExp(`^Error: export "default" of ${literal(file)} is a promise that rejected: database unreachable at start-up`),
    reason: 'Worker failed to boot.',
    appStack: true,
  });
  assert.match(p.output, /^Error: database unreachable at start-up\n\s+at .*rejected-app\.cjs:3:\d+/m);
});

test('a postFork hook that throws exits 3: Worker failed to boot', async () => {
  await expectBootFailure(['-c', path.join(FIXTURES, 'hooks', 'post-fork-throws.config.js'), ...BIND, APP], {
    code: 3,
    error: 'PROMFORK_ERR_HOOK_BOOT',
    line: /^Error: hook postFork failed: postFork refuses/,
    reason: 'Worker failed to boot.',
    appStack: true, // the hook is the user's code: its stack is shown
  });
});

// ---- 7-9: the address and the pidfile ----

test('a port in use exits 1 after 5 attempts, 1 s apart', { timeout: 30_000 }, async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject);
    blocker.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  try {
    const { port } = blocker.address() as net.AddressInfo;
    const bind = `127.0.0.1:${port}`;
    const started = performance.now();
    const p = await expectFailure(['-b', bind, APP], {
      code: 1,
      error: 'PROMFORK_ERR_BIND',
      line: new RegExp(`^Error: cannot listen on ${literal(bind)}: the address is already in use`),
      timeoutMs: 20_000,
    });
    const elapsed = performance.now() - started;
    // 5 attempts: the first 4 fail, are logged and retried 1 s later; the 5th fails for good.
    const retries = p.output.match(new RegExp(`\\[ERROR\\] Connection in use: ${literal(bind)} \\(EADDRINUSE\\); retrying in 1 second$`, 'gm'));
    assert.equal(retries?.length, 4, `retry lines; output:\n${p.output}`);
    assert.ok(elapsed >= 3900, `4 retries 1 s apart take at least 4 s, took ${Math.round(elapsed)} ms`);
    assert.doesNotMatch(p.output, /Listening at/);
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
});

test('a pidfile in a directory that does not exist exits 1 naming --pid and the path', async () => {
  // Tests run as root, which permission bits do not stop: a missing parent directory does.
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-pid-')), 'no-such-dir', 'promfork.pid');
  const p = await expectFailure(['--pid', file, ...BIND, APP], {
    code: 1,
    error: 'PROMFORK_ERR_PIDFILE',
    line: new RegExp(`^Error: --pid ${literal(file)}: cannot write the pidfile \\(ENOENT\\)`),
  });
  assert.doesNotMatch(p.output, /Listening at/);
  assert.equal(existsSync(file), false);
});

test('a second instance on the same pidfile exits 1; the first keeps serving and keeps its pidfile', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-pid-')), 'promfork.pid');
  const { server, url } = await startServer(['--pid', file, APP]);
  assert.equal(readFileSync(file, 'utf8'), `${server.pid}\n`);

  const second = await expectFailure(['--pid', file, ...BIND, APP], {
    code: 1,
    error: 'PROMFORK_ERR_ALREADY_RUNNING',
    line: new RegExp(`^Error: already running on PID ${server.pid} \\(--pid ${literal(file)}\\)`),
  });
  assert.doesNotMatch(second.output, /Listening at/);

  const r = await request(`${url}/pid`);
  assert.equal(r.status, 200);
  assert.deepEqual([Number(r.body)], server.workerPids());
  assert.equal(readFileSync(file, 'utf8'), `${server.pid}\n`);
  assert.equal(server.proc.exitCode, null);
});
