// Whether a process exists, by pid (signal 0 sends nothing). EPERM: it exists, another user's. Any error other
// than ESRCH counts as alive too: a caller would rather keep a live run's files (or refuse a pidfile) than risk it.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const CLI = fileURLToPath(new URL(`./cli.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

/**
 * Whether `pid` is a live promfork primary of user `uid` (by default ours): a pid written into a pidfile or a store
 * file by someone else (1, or any live process not ours) must not pass for a running server. Linux: the owner of
 * /proc/PID, and its command line (the primary's title `NAME: master`, or promfork's command before the title is
 * set). Without /proc, only whether the pid is alive.
 */
export function isPromforkPrimary(pid: number, uid: number = process.geteuid?.() ?? -1): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  if (!fs.existsSync('/proc/self')) return true;
  let argv: string[];
  try {
    if (uid >= 0 && fs.statSync(`/proc/${pid}`).uid !== uid) return false;
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false; // gone meanwhile
  }
  if (argv.some((a) => /: master$/.test(a.trimEnd()))) return true;
  return argv.some((a) => a === CLI || path.basename(a) === 'promfork' || safeRealpath(a) === CLI);
}

function safeRealpath(p: string): string | null {
  if (!p.startsWith('/') || !p.endsWith('.js')) return null;
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}
