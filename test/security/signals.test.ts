// Signals at any moment of any process's life. SIGUSR1 is what log rotation sends; Node's default handler for it
// opens the inspector (a debugger any local user can attach to and run code as the server). A storm of USR1 and
// USR2, from the first moment Node owns each process (the primary, every worker, the workers a HUP and a TTIN
// start), must open no inspector, print no "Debugger listening", and leave the server serving. USR2 (Gunicorn's
// binary upgrade) must not end the primary.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, CLI, request, startServer, type PromforkProcess } from '../helpers/server.js';
import { cmdline, listeningPorts, processTree, signalTaken } from '../helpers/procfs.js';
import { scrape, seriesKey } from '../helpers/metrics.js';

const SIGNO = { SIGUSR1: 10, SIGUSR2: 12 } as const;

// The command as installed: dist/cli.js run as a program (its first line is `#!/bin/sh`), with the node that runs
// the tests first on PATH.
const AS_PROGRAM = ['/bin/sh', '-c', 'PATH="$(dirname "$0"):$PATH" exec /bin/sh "$@"'];

interface Storm {
  stop(): void;
  /** Per pid: performance.now() of its first signal. */
  readonly firstSignal: Map<number, number>;
  sent: number;
}

/**
 * Every millisecond, send USR1 and USR2 to the primary and every worker, each signal from the first moment a
 * handler for it exists in the process: for USR1 Node's own (its start-up blocks the signal first thing), for
 * USR2 promfork's (the first module it runs). Before that, between exec and there, a signal's default action ends
 * any program. A forked child still running the primary's image (before its exec) is left alone.
 */
function storm(server: PromforkProcess): Storm {
  const state: Storm = { stop: () => clearInterval(timer), firstSignal: new Map(), sent: 0 };
  const armed = new Map<number, Set<keyof typeof SIGNO>>();
  const timer = setInterval(() => {
    for (const pid of processTree(server.pid)) {
      let sigs = armed.get(pid);
      if (!sigs) {
        const argv = cmdline(pid);
        const image = pid === server.pid ? CLI : 'entry.js';
        if (!/node[^/]*$/.test(argv[0] ?? '') || !argv.some((a) => a.endsWith(image))) continue;
        armed.set(pid, (sigs = new Set()));
      }
      for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) {
        if (!sigs.has(sig)) {
          if (!signalTaken(pid, SIGNO[sig], sig === 'SIGUSR1')) continue;
          sigs.add(sig);
          if (sig === 'SIGUSR1') state.firstSignal.set(pid, performance.now());
        }
        try {
          process.kill(pid, sig);
          state.sent++;
        } catch {
          // gone
        }
      }
    }
  }, 1);
  return state;
}

test('USR1 and USR2 at any moment of the primary and the workers open no inspector; the server serves on', { timeout: 90_000 }, async () => {
  let s: Storm | null = null;
  const bootedAt = new Map<number, number>();
  const started = await startServer([APP, '-w', '2'], {
    wrapper: AS_PROGRAM,
    onSpawn: (server) => {
      s = storm(server);
      void server.exited.then(() => s?.stop());
      server.proc.stderr!.on('data', () => {
        for (const m of server.output.matchAll(/Worker booted \(pid:(\d+)/g)) {
          if (!bootedAt.has(Number(m[1]))) bootedAt.set(Number(m[1]), performance.now());
        }
      });
    },
  });
  const storming = s as unknown as Storm;
  const { server, port, url, metricsUrl } = started;
  try {
    // New workers start while the storm goes on: two reloads (every worker replaced) and one more worker.
    for (let i = 0; i < 2; i++) {
      const from = server.output.length;
      server.signal('SIGHUP');
      await server.waitForCount(/Worker booted \(pid:\d+/, 2, { from, timeoutMs: 30_000 });
    }
    const from = server.output.length;
    server.signal('SIGTTIN');
    await server.waitFor(/Worker booted \(pid:\d+/, { from, timeoutMs: 30_000 });
    const tree = processTree(server.pid);
    assert.deepEqual(listeningPorts(tree), [port, new URL(metricsUrl).port].map(Number).sort((a, b) => a - b));
  } finally {
    storming.stop();
  }
  assert.doesNotMatch(server.output, /Debugger listening|Debugger attached/);
  assert.equal(server.proc.exitCode, null, 'the primary is alive');
  // The primary handled the signals (each USR1 reopens the logs, each USR2 is refused with a warning).
  assert.match(server.output, /Handling signal: usr1/);
  assert.match(server.output, /USR2 \(binary upgrade\) is not supported: send HUP to load new code; still serving/);
  // Every worker of the run (2 + 2 reloads x 2 + 1) was under fire before it had booted.
  const workers = [...bootedAt.keys()];
  assert.equal(workers.length, 7);
  for (const pid of workers) {
    const first = storming.firstSignal.get(pid);
    assert.ok(first !== undefined && first < bootedAt.get(pid)!, `worker ${pid} signalled before it booted`);
  }
  const reply = await request(`${url}/`);
  assert.equal(reply.status, 200);
  const metrics = await scrape(metricsUrl);
  assert.ok((metrics.samples.get(seriesKey('gunicorn_master_signals_total', { signal: 'usr2' })) ?? 0) > 0);
});
