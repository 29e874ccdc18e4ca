// Every server hook runs in the right process and order, with Gunicorn's meaning.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, FIXTURES, request, startServer } from '../helpers/server.js';

const RECORDER = path.join(FIXTURES, 'hooks', 'recorder.config.js');

function hookLog(file: string): { pid: number; hook: string }[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [pid, ...rest] = line.split(' ');
      return { pid: Number(pid), hook: rest.join(' ') };
    });
}

test('hooks run in Gunicorn order, each in its own process', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-hooks-')), 'hooks.log');
  const { server, url } = await startServer(['-c', RECORDER, APP], { env: { HOOK_LOG: file } });
  const [worker] = server.workerPids();
  assert.equal((await request(`${url}/status?code=201`)).status, 201);

  // HUP: the config is re-read, onReload runs, a new worker replaces the old one.
  let from = server.output.length;
  server.signal('SIGHUP');
  await server.waitFor(/Worker booted/, { from });
  await server.waitFor(new RegExp(`Worker exiting \\(pid: ${worker}\\)`), { from });
  await waitUntil(() => server.workerPids().length === 1 && server.workerPids()[0] !== worker);
  const [second] = server.workerPids();

  // QUIT to the worker runs workerInt; the primary replaces it.
  from = server.output.length;
  process.kill(second!, 'SIGQUIT');
  await server.waitFor(/Worker booted/, { from });
  await waitUntil(() => server.workerPids().length === 1 && server.workerPids()[0] !== second);
  const [third] = server.workerPids();

  await server.stop();
  const primary = server.pid;
  const log = hookLog(file);
  const inPrimary = log.filter((e) => e.pid === primary).map((e) => e.hook);
  assert.deepEqual(inPrimary, [
    'nworkersChanged 1 null',
    'onStarting',
    'whenReady',
    'preFork age=1',
    'nworkersChanged 1 1',
    'onReload',
    'preFork age=2',
    'childExit age=1',
    // QUIT gives no notice: the primary reaps it (childExit), then spawns the replacement.
    'childExit age=2',
    'preFork age=3',
    'childExit age=3',
    'onExit',
  ]);
  const byWorker = (pid: number) => log.filter((e) => e.pid === pid).map((e) => e.hook);
  assert.deepEqual(byWorker(worker!), [
    'postFork ppid=true',
    'postWorkerInit',
    'preRequest /status?code=201',
    'postRequest /status?code=201 201',
    'workerExit',
  ]);
  assert.deepEqual(byWorker(second!), ['postFork ppid=true', 'postWorkerInit', 'workerInt', 'workerExit']);
  assert.deepEqual(byWorker(third!), ['postFork ppid=true', 'postWorkerInit', 'workerExit']);
});

test('a timed-out worker whose loop is free runs workerAbort and exits 1', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-hooks-')), 'hooks.log');
  const { server, url } = await startServer(['-c', RECORDER, '-k', 'sync', '-t', '2', APP], { env: { HOOK_LOG: file } });
  const [worker] = server.workerPids();
  const from = server.output.length;
  request(`${url}/hang`).catch(() => {});
  await server.waitFor(new RegExp(`Worker \\(pid:${worker}\\) exited with code 1\\.`), { from });
  await server.waitFor(/Worker booted/, { from });
  const hooks = hookLog(file)
    .filter((e) => e.pid === worker)
    .map((e) => e.hook);
  assert.deepEqual(hooks, ['postFork ppid=true', 'postWorkerInit', 'preRequest /hang', 'workerAbort', 'workerExit']);
});

test('a hook that throws is logged and the server keeps serving', async () => {
  const { server, url } = await startServer(['-c', path.join(FIXTURES, 'hooks', 'hook-throws.config.js'), APP]);
  assert.equal((await request(`${url}/`)).status, 200);
  assert.match(server.output, /\[ERROR\] Exception in hook whenReady\nError: whenReady refuses/);
  assert.match(server.output, /\[ERROR\] Exception in hook preRequest\nError: preRequest refuses/);
});

async function waitUntil(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
