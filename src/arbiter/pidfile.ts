// The pidfile: refuses a second instance while a promfork primary of ours runs on the pid it names, writes
// atomically without following planted links, and removes the file on exit only while it still holds our pid (a
// newer instance may own it by then).
//
// The suggested place is a shared sticky directory (/tmp), where another local user can plant names. So the file
// is written to a temporary name that nobody can predict (random), created exclusively (O_EXCL: a planted file or
// link with that name fails the open instead of being followed), then renamed over the pidfile (rename replaces
// a planted link itself, never what it points to). Reading opens with O_NOFOLLOW. A pid in the file that is
// alive but not a promfork primary of this user (1, a recycled pid, someone else's process) does not block the
// start.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PromforkError } from '../errors.js';
import { isPromforkPrimary } from '../pid-alive.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_NONBLOCK } = fs.constants;

export class Pidfile {
  constructor(readonly file: string) {}

  create(pid: number): void {
    const existing = this.readPid();
    if (existing !== null && existing !== pid && isPromforkPrimary(existing)) {
      throw new PromforkError(
        'PROMFORK_ERR_ALREADY_RUNNING',
        `already running on PID ${existing} (--pid ${this.file}). Stop that server first, or give this one another --pid`,
      );
    }
    this.write(pid);
  }

  write(pid: number): void {
    const tmp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${randomBytes(9).toString('hex')}.tmp`);
    let created = false;
    try {
      const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
      created = true;
      try {
        fs.writeSync(fd, `${pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
    } catch (err) {
      if (created) {
        try {
          fs.unlinkSync(tmp);
        } catch {
          // nothing to remove
        }
      }
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      const hint =
        code === 'EPERM' || code === 'EACCES'
          ? 'Choose a path in a directory only the server\'s user can write, e.g. --pid /run/promfork/promfork.pid'
          : 'Choose a writable path, e.g. --pid /run/promfork/promfork.pid';
      throw new PromforkError('PROMFORK_ERR_PIDFILE', `--pid ${this.file}: cannot write the pidfile (${code}). ${hint}`);
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

  /** The pid in the file; null when there is none, or the name is a link, a FIFO or anything but a small file. */
  private readPid(): number | null {
    let text: string;
    try {
      const fd = fs.openSync(this.file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      try {
        if (!fs.fstatSync(fd).isFile()) return null;
        const buf = Buffer.alloc(32);
        text = buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, 0));
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return null;
    }
    if (!/^\d{1,10}\s*$/.test(text)) return null;
    const pid = Number.parseInt(text, 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  }
}
