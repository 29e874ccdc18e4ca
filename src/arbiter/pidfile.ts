// The pidfile: refuses a second instance whose pid is alive, writes atomically, and removes the
// file on exit only while it still holds our pid (a newer instance may own it by then).

import fs from 'node:fs';
import path from 'node:path';
import { PromforkError } from '../errors.js';
import { isAlive } from '../pid-alive.js';

export class Pidfile {
  constructor(readonly file: string) {}

  create(pid: number): void {
    const existing = this.readPid();
    if (existing !== null && existing !== pid && isAlive(existing)) {
      throw new PromforkError(
        'PROMFORK_ERR_ALREADY_RUNNING',
        `already running on PID ${existing} (--pid ${this.file}). Stop that server first, or give this one another --pid`,
      );
    }
    this.write(pid);
  }

  write(pid: number): void {
    const tmp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${pid}.tmp`);
    try {
      fs.writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
      fs.renameSync(tmp, this.file);
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing was written
      }
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new PromforkError(
        'PROMFORK_ERR_PIDFILE',
        `--pid ${this.file}: cannot write the pidfile (${code}). Choose a writable path, e.g. --pid /tmp/promfork.pid`,
      );
    }
  }

  /** Remove the file if it still names `pid`. Never throws. */
  unlink(pid: number): void {
    try {
      if (this.readPid() === pid) fs.unlinkSync(this.file);
    } catch {
      // already gone or not ours to remove
    }
  }

  private readPid(): number | null {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return null;
    }
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }
}

