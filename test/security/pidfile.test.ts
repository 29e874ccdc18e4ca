// The pidfile in a shared sticky directory (the docs' /tmp), where another local user (nobody) plants names first:
// links for the temporary names, a link, a FIFO or a foreign pid at the pidfile's own name. The server must start,
// write its pid into a regular file of its own, and change nothing a planted link points to.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, startServer } from '../helpers/server.js';
import { asNobody, makeShared } from '../helpers/other-user.js';

const VICTIM_TEXT = 'a root-owned file that must not change\n';

function setup(): { dir: string; pidfile: string; victim: string } {
  const dir = makeShared(mkdtempSync(path.join(os.tmpdir(), 'promfork-shared-')));
  const victim = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-victim-')), 'victim');
  writeFileSync(victim, VICTIM_TEXT, { mode: 0o644 });
  return { dir, pidfile: path.join(dir, 'promfork.pid'), victim };
}

function assertOwnPidfile(pidfile: string, pid: number, victim: string): void {
  const st = lstatSync(pidfile);
  assert.ok(st.isFile(), 'the pidfile is a regular file, not a link');
  assert.equal(st.uid, process.geteuid!());
  assert.equal(readFileSync(pidfile, 'utf8'), `${pid}\n`);
  assert.equal(readFileSync(victim, 'utf8'), VICTIM_TEXT);
}

test('links planted for the next pids\' temporary names are not followed', async () => {
  const { dir, pidfile, victim } = setup();
  // Links for every name the old scheme (.NAME.PID.tmp) would use for the next 400 pids (one process plants them).
  const plant = `const fs = require('fs'); const last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    for (let i = last + 1; i <= last + 400; i++) fs.symlinkSync(${JSON.stringify(victim)}, ${JSON.stringify(dir)} + '/.promfork.pid.' + i + '.tmp');
    console.log(last);`;
  const last = Number(asNobody(`exec "${process.execPath}" -e "$PLANT"`, { PLANT: plant }));
  const { server } = await startServer(['--pid', pidfile, APP]);
  assert.ok(server.pid > last && server.pid <= last + 400, `the primary's pid ${server.pid} is one of the planted names`);
  assertOwnPidfile(pidfile, server.pid, victim);
});

test('a link planted at the pidfile\'s name is replaced, not followed', async () => {
  const { dir, pidfile, victim } = setup();
  asNobody(`ln -s '${victim}' '${dir}/promfork.pid'`);
  const { server } = await startServer(['--pid', pidfile, APP]);
  assertOwnPidfile(pidfile, server.pid, victim);
});

test('a FIFO planted at the pidfile\'s name does not hang the start', async () => {
  const { dir, pidfile, victim } = setup();
  asNobody(`mkfifo '${dir}/promfork.pid'`);
  const { server } = await startServer(['--pid', pidfile, APP]);
  assertOwnPidfile(pidfile, server.pid, victim);
});

test('a pidfile naming pid 1 or a live process that is not a promfork primary does not block the start', async () => {
  const { dir, pidfile, victim } = setup();
  asNobody(`echo 1 > '${dir}/promfork.pid'`);
  const first = await startServer(['--pid', pidfile, APP]);
  assertOwnPidfile(pidfile, first.server.pid, victim);
  await first.server.stop();

  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    writeFileSync(pidfile, `${sleeper.pid}\n`);
    const second = await startServer(['--pid', pidfile, APP]);
    assertOwnPidfile(pidfile, second.server.pid, victim);
  } finally {
    sleeper.kill('SIGKILL');
  }
});
