// The Node flags that keep SIGUSR1 from opening the inspector during Node's own start-up, before the first
// module (./early-signals.ts) can install a listener.
//
// - `--disable-sigusr1` (Node >= 22.14 and 23.7): Node installs no SIGUSR1 handler at all. It also leaves the
//   signal blocked for good, so no JavaScript listener ever runs either: right for workers, which are told to
//   reopen their logs over IPC, wrong for the primary, whose USR1 reopens the log files (Gunicorn's semantics).
// - `--inspect-port=192.0.2.1:9229` (every Node line): a SIGUSR1 that arrives while Node starts still starts the
//   inspector, but on an address of TEST-NET-1 (RFC 5737), which is never a local address: the bind fails
//   ("Starting inspector on 192.0.2.1:9229 failed: address not available") and nothing listens. Once the first
//   module has run, the signal goes to promfork's listener and Node's handler is out of the way.
//
// The promfork command (dist/cli.js run as a program) starts Node with the second flag; workers are forked with
// the first where Node has it, else the second.

export const UNREACHABLE_INSPECTOR = '--inspect-port=192.0.2.1:9229';

const HAS_DISABLE_SIGUSR1 = process.allowedNodeEnvironmentFlags.has('--disable-sigusr1');

/** execArgv for a worker: the primary's own flags without any inspector flag, plus the guard. */
export function workerExecArgv(parent: readonly string[] = process.execArgv): string[] {
  const kept = parent.filter((a) => !a.startsWith('--inspect') && a !== '--disable-sigusr1');
  return [...kept, HAS_DISABLE_SIGUSR1 ? '--disable-sigusr1' : UNREACHABLE_INSPECTOR];
}
