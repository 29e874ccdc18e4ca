// Signals to the primary, with Gunicorn's meaning: TERM graceful, INT/QUIT fast, HUP reload with no
// dropped request, TTIN/TTOU one worker more/less, USR1 reopen log files.
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, loadLoop, request, startServer } from '../helpers/server.js';

test('TERM while a slow request runs: the request completes, then the primary exits 0', async () => {
  const { server, url } = await startServer([APP, '-w', '2']);
  const from = server.output.length;
  const slow = request(`${url}/slow?ms=1500`);
  await server.waitFor(/\[DEBUG\] GET \/slow/, { from }); // the request reached a worker
  server.signal('SIGTERM');
  const reply = await slow;
  assert.equal(reply.status, 200);
  assert.match(reply.body, /^slow \d+\n$/);
  const { code } = await server.exited;
  assert.equal(code, 0);
  assert.match(server.output.slice(from), /Handling signal: term[\s\S]*Shutting down: Master/);
});

for (const sig of ['SIGINT', 'SIGQUIT'] as const) {
  test(`${sig} stops fast: in-flight requests are cut and the primary exits 0`, async () => {
    const { server, url } = await startServer([APP, '-w', '2', '--graceful-timeout', '30']);
    const hanging = request(`${url}/hang`).then(
      () => 'answered',
      () => 'cut',
    );
    await server.waitFor(/\[DEBUG\] GET \/hang/); // the request reached a worker
    const t0 = Date.now();
    server.signal(sig);
    const { code } = await server.exited;
    assert.equal(code, 0);
    assert.equal(await hanging, 'cut');
    assert.ok(Date.now() - t0 < 10_000, 'a fast stop does not wait for the graceful timeout');
    assert.match(server.output, new RegExp(`Handling signal: ${sig.slice(3).toLowerCase()}`));
  });
}

test('HUP under steady load replaces every worker with zero failed requests', async () => {
  const { server, url } = await startServer([APP, '-w', '2']);
  const before = server.workerPids();
  const load = loadLoop(`${url}/`, { concurrency: 4, maxMs: 30_000 });
  await server.waitForCount(/Worker booted/, 2);
  const from = server.output.length;
  server.signal('SIGHUP');
  await server.waitFor(/Hang up: Master/, { from });
  await server.waitForCount(/Worker booted/, 2, { from });
  // Both old workers exit after their successors booted.
  await server.waitForCount(/Worker exiting \(pid: \d+\)/, 2, { from });
  const sentAtSwap = load.sent;
  // Keep the load on the new workers for a while as well.
  while (load.sent < sentAtSwap + 50) await new Promise((r) => setTimeout(r, 20));
  await load.stop();
  const after = server.workerPids();
  assert.equal(after.length, 2);
  for (const pid of after) assert.ok(!before.includes(pid), `worker ${pid} is new`);
  assert.deepEqual(load.failures, []);
  assert.ok(load.sent > 50);
});

test('TTIN adds a worker, TTOU removes the oldest, never below one', async () => {
  const { server } = await startServer([APP, '-w', '1']);
  const [first] = server.workerPids();
  let from = server.output.length;
  server.signal('SIGTTIN');
  await server.waitFor(/Worker booted/, { from });
  assert.equal(server.workerPids().length, 2);
  from = server.output.length;
  server.signal('SIGTTOU');
  await server.waitFor(new RegExp(`Worker exiting \\(pid: ${first}\\)`), { from });
  await server.waitFor(/Worker \(pid:\d+\) was sent SIGTERM!|Handling signal: ttou/, { from });
  await waitUntil(() => server.workerPids().length === 1);
  assert.ok(!server.workerPids().includes(first!), 'the oldest worker was stopped');
  // TTOU at one worker is ignored.
  from = server.output.length;
  server.signal('SIGTTOU');
  await server.waitFor(/Handling signal: ttou/, { from });
  server.signal('SIGTTIN');
  await server.waitFor(/Worker booted/, { from });
  assert.equal(server.workerPids().length, 2);
});

test('USR1 reopens the log files (rotation) in the primary and the workers', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-usr1-'));
  const errorlog = path.join(dir, 'error.log');
  const accesslog = path.join(dir, 'access.log');
  const { server, url } = await startServer([APP, '--error-logfile', errorlog, '--access-logfile', accesslog], { logFile: errorlog });
  await request(`${url}/`);
  renameSync(errorlog, `${errorlog}.1`);
  renameSync(accesslog, `${accesslog}.1`);
  server.signal('SIGUSR1');
  // As Gunicorn, the primary logs "Handling signal: usr1" and then reopens: the line is the old file's last.
  await waitUntil(() => existsSync(errorlog) && /Handling signal: usr1\n$/.test(readFileSync(`${errorlog}.1`, 'utf8')));
  server.signal('SIGTTIN');
  await waitUntil(() => /Handling signal: ttin/.test(readFileSync(errorlog, 'utf8')));
  // The worker reopens on its own SIGUSR1; poll until a request lands in the new access log.
  await waitUntil(async () => {
    await request(`${url}/after-rotation`);
    return existsSync(accesslog) && readFileSync(accesslog, 'utf8').includes('/after-rotation');
  });
  assert.doesNotMatch(readFileSync(`${accesslog}.1`, 'utf8'), /after-rotation/);
});

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('TERM closes idle keep-alive connections at once: the worker exits without waiting for the graceful timeout', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '--graceful-timeout', '30', '--keep-alive', '60']);
  const [worker] = server.workerPids();
  const agent = new http.Agent({ keepAlive: true });
  try {
    const first = await new Promise<number>((resolve, reject) => {
      http.get(`${url}/`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject);
    });
    assert.equal(first, 200);
    assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'an idle keep-alive connection is open');
    const from = server.output.length;
    const t0 = Date.now();
    process.kill(worker!, 'SIGTERM');
    await server.waitFor(new RegExp(`Worker exiting \\(pid: ${worker}\\)`), { from, timeoutMs: 10_000 });
    assert.ok(Date.now() - t0 < 5_000, `the worker took ${Date.now() - t0} ms to exit`);
  } finally {
    agent.destroy();
  }
});
