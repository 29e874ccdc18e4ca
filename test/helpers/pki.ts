// A throw-away PKI for TLS tests: a CA and a server certificate for 127.0.0.1 (and a client certificate), made with
// the openssl command in a private temporary directory. A missing openssl is an error naming the install command.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTool } from './tools.js';

export interface Pki {
  dir: string;
  /** ca.crt, server.crt, server.key, client.crt, client.key */
  file(name: string): string;
  remove(): void;
}

export function makePki(prefix = 'promfork-pki-'): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const file = (name: string) => path.join(dir, name);
  const bin = requireTool('openssl');
  const openssl = (...args: string[]) => execFileSync(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=promfork-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [name, ext, serial] of [
    ['server', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n', '11'],
    ['client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n', '12'],
  ] as const) {
    writeFileSync(file(`${name}.ext`), ext);
    openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', serial,
      '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  }
  return { dir, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
