// The system tools the tests run, with the Debian package of each and the name that opts out of them.
// One table for the tests and for the preflight of `npm test` (scripts/test.ts): a missing tool fails the test
// that needs it, naming the install command; only PROMFORK_TEST_SKIP=NAME,... skips those tests, visibly
// (the runner names what did not run). No node:test import here, so the preflight can use it.

import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export interface Tool {
  /** The executable. */
  readonly bin: string;
  /** The Debian package that installs it. */
  readonly pkg: string;
  /** The PROMFORK_TEST_SKIP name that opts out of the tests needing it. */
  readonly optOut: string;
  /** What does not run without it (for the opt-out's report). */
  readonly covers: string;
}

export const TOOLS = [
  { bin: 'redis-server', pkg: 'redis-server', optOut: 'redis', covers: 'the Redis store, sidecar, Sentinel and Cluster tests (whole files)' },
  { bin: 'redis-cli', pkg: 'redis-tools', optOut: 'redis', covers: 'the Redis Cluster set-up (redis-cli --cluster create)' },
  { bin: 'promtool', pkg: 'prometheus', optOut: 'prometheus', covers: 'promtool check metrics/rules/config and test rules, the strict OpenMetrics parser' },
  { bin: 'prometheus', pkg: 'prometheus', optOut: 'prometheus', covers: 'the real-Prometheus end-to-end dashboard and alert test' },
  { bin: 'tmux', pkg: 'tmux', optOut: 'tmux', covers: 'the `promfork top` terminal test' },
  { bin: 'openssl', pkg: 'openssl', optOut: 'openssl', covers: 'the TLS tests of the metrics server, of `promfork top` and of Redis (rediss+cluster://, rediss+sentinel://; certificates made with the openssl CLI)' },
  { bin: 'systemd-analyze', pkg: 'systemd', optOut: 'systemd', covers: 'systemd-analyze verify of deploy/promfork.service' },
  { bin: 'ss', pkg: 'iproute2', optOut: 'ss', covers: 'the accept-path and idle-client tests that read socket states (who holds a connection, accept queues, backlogs)' },
  { bin: 'setpriv', pkg: 'util-linux', optOut: 'setpriv', covers: 'the privileged-port check when the tests run as root (run as user nobody)' },
] as const satisfies readonly Tool[];

export type ToolName = (typeof TOOLS)[number]['bin'];
export const OPT_OUTS = [...new Set(TOOLS.map((t) => t.optOut))];
export const SKIP_ENV = 'PROMFORK_TEST_SKIP';

/** The opt-outs named by PROMFORK_TEST_SKIP; an unknown name is an error listing the valid ones. */
export function optedOut(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const names = (env[SKIP_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of names) {
    if (!(OPT_OUTS as string[]).includes(n)) throw new Error(`${SKIP_ENV}: unknown name '${n}'; the names are ${OPT_OUTS.join(', ')}`);
  }
  return new Set(names);
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of the executable `bin` on PATH (or in /usr/bin, /usr/sbin, /usr/local/bin), or undefined. */
export function findTool(bin: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const p = path.join(dir, bin);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

export function toolInfo(bin: ToolName): Tool {
  return TOOLS.find((t) => t.bin === bin)!;
}

/** The command that installs these packages (with sudo unless root). */
export function installCommand(pkgs: readonly string[]): string {
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  return `${sudo}apt-get install -y --no-install-recommends ${[...new Set(pkgs)].join(' ')}`;
}

/** Why a missing tool fails the test that needs it. */
export function missingToolMessage(bin: ToolName): string {
  const t = toolInfo(bin);
  return `${bin} is not installed: run \`${installCommand([t.pkg])}\` (or opt out of these tests explicitly: ${SKIP_ENV}=${t.optOut})`;
}

interface Skippable {
  skip(message?: string): void;
}

/**
 * The path of `bin` for a test that needs it. Opted out (PROMFORK_TEST_SKIP): the test is skipped with that reason
 * and undefined is returned (return at once). Missing: throws, naming the install command.
 */
export function needTool(t: Skippable, bin: ToolName): string | undefined {
  const info = toolInfo(bin);
  if (optedOut().has(info.optOut)) {
    t.skip(`opted out: ${SKIP_ENV}=${info.optOut}`);
    return undefined;
  }
  const found = findTool(bin);
  if (found === undefined) throw new Error(missingToolMessage(bin));
  return found;
}

/** The path of `bin` where a test cannot skip (a hook, a helper): throws, naming the install command, if missing. */
export function requireTool(bin: ToolName): string {
  const found = findTool(bin);
  if (found === undefined) throw new Error(missingToolMessage(bin));
  return found;
}
