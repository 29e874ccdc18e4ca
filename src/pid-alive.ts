// Whether a process exists, by pid (signal 0 sends nothing). EPERM: it exists, another user's. Any error other
// than ESRCH counts as alive too: a caller would rather keep a live run's files (or refuse a pidfile) than risk it.

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
