// The sidecar exporter (`promfork exporter`) as tests start it, and traffic with known outcomes for a server.
import assert from 'node:assert/strict';
import { PromforkProcess, request, type Started } from './server.js';

/**
 * Start `promfork exporter ARGS` (with `env` added: passwords never go on a command line) on a free loopback port;
 * its /metrics URL from its log. Stopped after the file.
 */
export async function startSidecar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: PromforkProcess; metricsUrl: string }> {
  const proc = new PromforkProcess(['exporter', ...args, '--metrics-port', '0', '--metrics-bind', '127.0.0.1'], { env });
  const m = await Promise.race([
    proc.waitFor(/Serving metrics on (http:\/\/\S+\/metrics)/),
    proc.exited.then(({ code }) => {
      throw new Error(`promfork exporter exited with ${code} before serving:\n${proc.output}`);
    }),
  ]);
  return { proc, metricsUrl: m[1]! };
}

/** `ok` requests to `/` and `failing` to `/throw` (the behaviours fixture app), each with its expected status. */
export async function traffic(s: Started, ok: number, failing: number): Promise<void> {
  const replies = await Promise.all([
    ...Array.from({ length: ok }, () => request(`${s.url}/`)),
    ...Array.from({ length: failing }, () => request(`${s.url}/throw`)),
  ]);
  assert.deepEqual(replies.map((r) => r.status).sort(), [...Array(ok).fill(200), ...Array(failing).fill(500)]);
}
