// Reference server for bench/throughput.ts: examples/plain.js on a bare, single-process node:http
// server (no primary, no IPC hand-off, no worker). Logs the same "Listening at:" line as promfork.
//
//   node bench/bare-server.js [--port N] [--close]
//
// --close answers every request with `Connection: close`, as promfork's sync worker does.

import http from 'node:http';
import { parseArgs } from 'node:util';
import app from '../examples/plain.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    close: { type: 'boolean', default: false },
  },
});

const handler = values.close
  ? (req, res) => {
      res.shouldKeepAlive = false;
      return app(req, res);
    }
  : app;

const server = http.createServer(handler);

server.listen({ host: '127.0.0.1', port: Number(values.port) }, () => {
  const { port } = server.address();
  process.stderr.write(`Listening at: http://127.0.0.1:${port} (${process.pid})\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
