// The signals the primary handles (Gunicorn's set) and the name each is logged and counted under
// (`gunicorn_master_signals_total{signal="hup"}`).

export const HANDLED_SIGNALS: NodeJS.Signals[] = [
  'SIGHUP',
  'SIGQUIT',
  'SIGINT',
  'SIGTERM',
  'SIGTTIN',
  'SIGTTOU',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

export function signalName(sig: NodeJS.Signals): string {
  return sig.slice(3).toLowerCase();
}
