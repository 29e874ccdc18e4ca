// Plain node:cluster, the setup most Node apps use to run on several cores: a primary forks workers that
// share one listening port (Node's default scheduling on Linux: the primary accepts and hands connections
// round-robin), each serving examples/plain.js with no metrics. The baseline of bench/accept.ts.
//
//   node bench/cluster-plain.js [--workers 2] [--host 127.0.0.1] [--port 0]
//
// Logs `Listening at: URL (PID)` like promfork. SIGTERM/SIGINT: stop the workers and exit.

import cluster from 'node:cluster';
import http from 'node:http';
import { parseArgs } from 'node:util';
import app from '../examples/plain.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});

if (cluster.isPrimary) {
  const n = Number(values.workers);
  let listening = 0;
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('listening', (_worker, address) => {
    if (++listening === n) process.stderr.write(`Listening at: http://${values.host}:${address.port} (${process.pid})\n`);
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // Port 0 in a cluster worker: the primary binds one port and shares it between the workers.
  http.createServer(app).listen(Number(values.port), values.host);
}
