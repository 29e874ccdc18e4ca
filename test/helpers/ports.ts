// A free loopback port, for servers the tests (and benchmarks) start that cannot bind port 0 themselves
// (redis-server, prometheus). Free a moment ago: the caller retries if something took it meanwhile.
import net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
