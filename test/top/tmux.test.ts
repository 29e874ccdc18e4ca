// The live view on a real terminal: promfork top in a private tmux server (its own -L socket, killed after),
// against a real promfork. The frame shows both worker pids, refreshes under load, and `q` (or Ctrl-C) quits with
// status 0 and the terminal's main screen restored. Every wait polls the pane with a deadline.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, CLI, request, startServer } from '../helpers/server.js';
import { cells } from './helpers.js';
import { until as poll } from '../helpers/poll.js';
import { needTool } from '../helpers/tools.js';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}


test('live view in tmux: both pids, refreshed under load, q or Ctrl-C quits and restores the screen', { timeout: 90_000 }, async (t) => {
  const tmuxBin = needTool(t, 'tmux');
  if (tmuxBin === undefined) return;
  const { server, url, metricsUrl } = await startServer([APP, '--workers', '2']);
  const pids = server.workerPids();
  assert.equal(pids.length, 2);
  const sock = `promfork-top-test-${process.pid}-${Date.now()}`;
  const tmux = (...args: string[]) => execFileSync(tmuxBin, ['-L', sock, '-f', '/dev/null', ...args], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm-256color' } });
  const pane = (session = 'top') => tmux('capture-pane', '-p', '-t', session);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-top-tmux-'));
  const top = [process.execPath, CLI, 'top', '--url', metricsUrl].map(shellQuote).join(' ');
  // The pane's shell runs top on the terminal, records its exit status, and keeps the pane open after it
  // (so the screen left behind can be read). The shell reaps top itself: no reliance on tmux's dead-pane state.
  const startTop = (session: string) => {
    const statusFile = path.join(dir, `${session}.status`);
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', `${top}; echo "exit $?" > ${shellQuote(statusFile)}; exec sleep 600`);
    return statusFile;
  };
  const exitStatus = (statusFile: string) =>
    poll('top to exit', () => {
      const text = existsSync(statusFile) ? readFileSync(statusFile, 'utf8') : '';
      return text.endsWith('\n') ? text : undefined;
    });
  let socketPath = '';
  try {
    const statusFile = startTop('top');
    socketPath = tmux('display-message', '-p', '#{socket_path}').trim();

    const rowsOf = (screen: string) =>
      screen
        .split('\n')
        .filter((l) => /^worker_\d+ /.test(l))
        .map(cells);
    const first = await poll('a frame with both worker pids', () => {
      const screen = pane();
      const rows = rowsOf(screen);
      return rows.length === 2 && rows.every((r) => r[2] === 'running') ? screen : undefined;
    });
    assert.deepEqual(rowsOf(first).map((r) => Number(r[1])).sort((a, b) => a - b), pids);
    assert.match(first, new RegExp(`^promfork top - ${metricsUrl.replace(/[.]/g, '\\.')} - \\d\\d:\\d\\d:\\d\\d - `, 'm'));
    assert.match(first, /^master: 2 workers, restarts 0, signals: none$/m);
    assert.match(first, /^q or Ctrl-C: quit$/m);

    // Load: 30 requests. The frame refreshes until the total shows 30; the frames whose interval held them
    // show a rate above 0 (each frame stays on screen for a second; the pane is read every 50 ms).
    // The refresh is proven by the total going from 0 to 30 on the same screen. (Not by the header's clock: it
    // has a one-second resolution, and two frames can share a second when one scrape answered late.)
    const totalOf = (screen: string) => cells(screen.split('\n').find((l) => l.startsWith('total ')) ?? '')[1];
    assert.equal(totalOf(first), '0', first);
    await Promise.all(Array.from({ length: 30 }, () => request(`${url}/`)));
    let maxRate = 0;
    const last = await poll('a frame with 30 requests in total', () => {
      const screen = pane();
      const total = screen.split('\n').find((l) => l.startsWith('total '));
      if (!total) return undefined;
      const c = cells(total);
      maxRate = Math.max(maxRate, Number(c[2]) || 0);
      return c[1] === '30' ? screen : undefined;
    });
    assert.ok(maxRate > 0, `a frame showed requests/s > 0:\n${last}`);

    tmux('send-keys', '-t', 'top', 'q');
    assert.equal(await exitStatus(statusFile), 'exit 0\n');
    // The alternate screen was left: the main screen is back as it was (empty), the frame is gone.
    assert.equal(pane().trim(), '');

    // Ctrl-C quits the same way (the terminal is in raw mode: it arrives as a key, not as SIGINT).
    const statusFile2 = startTop('top2');
    await poll('a frame in the second session', () => (rowsOf(pane('top2')).length === 2 ? true : undefined));
    tmux('send-keys', '-t', 'top2', 'C-c');
    assert.equal(await exitStatus(statusFile2), 'exit 0\n');
    assert.equal(pane('top2').trim(), '');
  } finally {
    spawnSync(tmuxBin, ['-L', sock, 'kill-server']);
    if (socketPath.endsWith(`/${sock}`)) rmSync(socketPath, { force: true }); // tmux leaves its socket file
    rmSync(dir, { recursive: true, force: true });
  }
});
