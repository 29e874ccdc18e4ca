// The second local user of the security probes: `nobody` (65534), reached with util-linux's setpriv from root.
// A missing tool or a run as another user than root is a failure that says what to do, never a silent skip.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync } from 'node:fs';

export const NOBODY = 65534;

function requireSetpriv(): void {
  if (process.geteuid?.() !== 0) throw new Error('the security probes switch to a second user (nobody) with setpriv: run the tests as root');
  const probe = spawnSync('setpriv', ['--version']);
  if (probe.error) throw new Error('setpriv is missing: apt-get install util-linux');
}

/** Run a shell script as nobody; returns its stdout. Throws with its stderr on a non-zero exit. */
export function asNobody(script: string, env: NodeJS.ProcessEnv = {}): string {
  requireSetpriv();
  return execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/bin/sh', '-c', script], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
}

/** A directory like /tmp: world-writable with the sticky bit. */
export function makeShared(dir: string): string {
  chmodSync(dir, 0o1777);
  return dir;
}

/** Give `file` to nobody. */
export function giveToNobody(file: string): void {
  chownSync(file, NOBODY, NOBODY);
}
