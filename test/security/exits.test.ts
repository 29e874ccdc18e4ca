// Why a worker ended, told right, and an app's own exit status never taken for a boot error: a booted worker whose
// app calls process.exit(3) or (4) is replaced like any crash (the server does not stop as "Worker failed to boot");
// a worker killed after its timeout is not "Perhaps out of memory?"; a real V8 out-of-memory crash is not "was
// sent SIGABRT!".

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';

for (const code of [3, 4]) {
  test(`a booted worker whose app exits with status ${code} is replaced; the server serves on`, async () => {
    const { server, url } = await startServer([APP, '-w', '1', '--no-metrics']);
    const [pid] = server.workerPids();
    const from = server.output.length;
    await request(`${url}/exit?code=${code}`).catch(() => null);
    await server.waitFor(new RegExp(`Worker \\(pid:${pid}\\) exited with code ${code}\\.`), { from });
    await server.waitFor(/Worker booted \(pid:\d+/, { from });
    assert.equal((await request(`${url}/`)).status, 200);
    assert.doesNotMatch(server.output, /Worker failed to boot|App failed to load|Shutting down/);
    assert.equal(server.proc.exitCode, null);
  });
}

test('a worker killed after its timeout is logged as such, not as out of memory', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '--timeout', '1', '--no-metrics']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  void request(`${url}/cpu?ms=30000`).catch(() => null);
  await server.waitFor(new RegExp(`Worker \\(pid:${pid}\\) was sent SIGKILL after its WORKER TIMEOUT \\(--timeout 1\\)`), { from });
  assert.doesNotMatch(server.output.slice(from), /Perhaps out of memory/);
});

test('a V8 out-of-memory crash is logged as a crash (SIGABRT), not as a signal the primary sent', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '--no-metrics'], { env: { NODE_OPTIONS: '--max-old-space-size=64' } });
  const [pid] = server.workerPids();
  const from = server.output.length;
  void request(`${url}/oom`).catch(() => null);
  await server.waitFor(new RegExp(`Worker \\(pid:${pid}\\) crashed \\(SIGABRT\\): a fatal error in Node, e\\.g\\. JavaScript heap out of memory`), {
    from,
    timeoutMs: 60_000,
  });
  assert.doesNotMatch(server.output.slice(from), /was sent SIGABRT/);
  await server.waitFor(/Worker booted \(pid:\d+/, { from });
});
