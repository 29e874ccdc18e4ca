// The directory store (the default): one JSON file per worker snapshot, plus one for the run's retired fold, in
// PROMETHEUS_MULTIPROC_DIR (--multiproc-dir).
//
//   promfork-<ppid>-<pid>.json                      the last snapshot of worker <pid> of the primary <ppid>
//   promfork-<ppid>-retired.json                    the fold of that run's dead workers
//   .promfork-<ppid>-<pid|retired>.json.<hex>.tmp   a write in progress (renamed over the file when complete)
//
// `prepare()` runs once in the primary at start (sync I/O there only): it refuses an unsafe directory and clears
// promfork's own files of this run and of dead primaries, never another live primary's nor anything foreign.
// Writes are atomic (temp file in the same directory, then rename): a reader or a crash sees the old snapshot or
// the new one, never a torn file. No fsync: the store outlives processes, not the machine.
// The text of snapshots and of the retired fold (NaN and ±Infinity included) is codec.ts's, shared with the Redis
// store.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PromforkError } from '../errors.js';
import { MAX_STORED_TEXT, encodeRetired, encodeSnapshot, parseRetired, parseSnapshot } from './codec.js';
import type { Snapshot } from './snapshot.js';
import type { SnapshotStore, StoreRun } from './store.js';
import { isPromforkPrimary } from '../pid-alive.js';

// The snapshot's validation lives in codec.ts (shared with the Redis store); re-exported for existing importers.
export { parseSnapshot } from './codec.js';

export interface StoreLog {
  warning(msg: string): void;
}

const SETTING = '--multiproc-dir';
const ANOTHER = `or choose another directory with ${SETTING} or PROMETHEUS_MULTIPROC_DIR`;

const WORKER_FILE = /^promfork-([1-9]\d*)-([1-9]\d*)\.json$/;
const RETIRED_FILE = /^promfork-([1-9]\d*)-retired\.json$/;
const TEMP_FILE = /^\.promfork-([1-9]\d*)-(?:[1-9]\d*|retired)\.json\.[0-9a-f]+\.tmp$/;

/** The primary pid a promfork file name belongs to; null for a name promfork does not write. */
function ownerOfFile(name: string): number | null {
  const m = WORKER_FILE.exec(name) ?? RETIRED_FILE.exec(name) ?? TEMP_FILE.exec(name);
  return m === null ? null : Number(m[1]);
}

export class DirectoryStore implements SnapshotStore {
  readonly kind = 'directory' as const;
  /** Absolute path of the directory. */
  readonly dir: string;
  readonly ppid: number;
  /** The tail of the write queue of each file: writes to one file apply in call order. Never rejects. */
  private readonly queues = new Map<string, Promise<void>>();
  private closed = false;
  /** The directory as first verified (real path, device, inode): every later use must find the same one. */
  private identity: DirectoryIdentity | null = null;

  constructor(dir: string, run: StoreRun) {
    if (!isPid(run.ppid)) throw new TypeError(`DirectoryStore: ppid must be a positive integer, got ${run.ppid}`);
    this.dir = path.resolve(dir);
    this.ppid = run.ppid;
  }

  /**
   * Make `dir` ready for a new run of the primary `ppid` (sync; once, in the primary, at start): create it with
   * mode 0700 when missing, refuse it when unsafe, remove promfork's files of this run and of dead primaries.
   * Throws a PromforkError (PROMFORK_ERR_STORE_UNSAFE or PROMFORK_ERR_STORE_DIR) with a one-line message.
   */
  static prepare(dir: string, opts: { ppid: number; log: StoreLog }): DirectoryStore {
    const store = new DirectoryStore(dir, { ppid: opts.ppid });
    ensureSafeDirectory(dir);
    checkAncestors(dir);
    clearStaleFiles(dir, opts.ppid, opts.log);
    return store;
  }

  /**
   * Checks the directory before a write or a read batch: every component of its real path still owned by root or
   * this user and not replaceable by anyone else, the directory itself still private, still this user's, and still
   * the same one (device and inode as at the first use): a directory swapped for another (or for a link) after
   * the start is refused, never written into. Throws an Error naming the problem.
   */
  async verify(): Promise<void> {
    const found = await inspectDirectory(this.dir);
    if (typeof found === 'string') throw new Error(`${SETTING} ${this.dir}: ${found}; nothing is read or written there`);
    if (this.identity === null) this.identity = found;
    else if (found.real !== this.identity.real || found.dev !== this.identity.dev || found.ino !== this.identity.ino) {
      throw new Error(`${SETTING} ${this.dir}: the directory was replaced since the start (now ${found.real}); nothing is read or written there`);
    }
  }

  /** Path of worker `pid`'s snapshot file. */
  fileFor(pid: number): string {
    return path.join(this.dir, `promfork-${this.ppid}-${pid}.json`);
  }

  /** Path of the run's retired fold. */
  get retiredFile(): string {
    return path.join(this.dir, `promfork-${this.ppid}-retired.json`);
  }

  async writeSnapshot(s: Snapshot): Promise<void> {
    if (!isPid(s.pid)) throw new Error(`cannot write a snapshot: pid must be a positive integer, got ${s.pid}`);
    if (s.ppid !== this.ppid) {
      throw new Error(`cannot write the snapshot of pid ${s.pid}: it belongs to primary ${s.ppid}, this store to ${this.ppid}`);
    }
    // Serialised now: the file holds the snapshot as it was at the call, whatever the caller does next.
    return this.enqueue(this.fileFor(s.pid), JSON.stringify(encodeSnapshot(s)));
  }

  async readSnapshot(pid: number): Promise<Snapshot | null> {
    if (!isPid(pid)) return null;
    await this.verify();
    const file = this.fileFor(pid);
    const text = await readIfExists(file);
    if (text === null) return null;
    const result = parseSnapshot(text, pid, this.ppid);
    if (typeof result === 'string') throw new Error(`${file}: ${result}`);
    return result;
  }

  async readAll(): Promise<{ snapshots: Snapshot[]; problems: string[] }> {
    let names: string[];
    await this.verify();
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      throw new Error(`cannot list ${this.dir}: ${errText(err)}`, { cause: err });
    }
    const results = await Promise.all(
      names.map(async (name): Promise<Snapshot | string | null> => {
        const m = WORKER_FILE.exec(name);
        if (m === null || Number(m[1]) !== this.ppid) return null;
        const file = path.join(this.dir, name);
        let text: string | null;
        try {
          text = await readIfExists(file);
        } catch (err) {
          return errText(err);
        }
        if (text === null) return null; // removed since the listing: the worker was folded
        const result = parseSnapshot(text, Number(m[2]), this.ppid);
        return typeof result === 'string' ? `${file}: ${result}` : result;
      }),
    );
    const snapshots: Snapshot[] = [];
    const problems: string[] = [];
    for (const r of results) {
      if (typeof r === 'string') problems.push(r);
      else if (r !== null) snapshots.push(r);
    }
    snapshots.sort((a, b) => a.seat - b.seat || a.pid - b.pid);
    return { snapshots, problems };
  }

  async removeSnapshot(pid: number): Promise<void> {
    if (!isPid(pid)) return;
    const file = this.fileFor(pid);
    await this.queues.get(file); // a pending write must not recreate the file afterwards
    await removeIfExists(file);
  }

  async writeRetired(data: unknown): Promise<void> {
    return this.enqueue(this.retiredFile, encodeRetired(data, this.ppid));
  }

  async readRetired(): Promise<unknown | null> {
    await this.verify();
    const file = this.retiredFile;
    const text = await readIfExists(file);
    if (text === null) return null;
    const result = parseRetired(text, this.ppid);
    if (typeof result === 'string') throw new Error(`${file}: ${result}`);
    return result.data;
  }

  async clear(): Promise<void> {
    await Promise.all(this.queues.values());
    await this.verify();
    const names = await fsp.readdir(this.dir);
    await Promise.all(
      names.filter((n) => ownerOfFile(n) === this.ppid).map((n) => removeIfExists(path.join(this.dir, n))),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.queues.values());
  }

  private enqueue(file: string, text: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`cannot write ${file}: the store is closed`));
    const previous = this.queues.get(file) ?? Promise.resolve();
    const done = previous.then(async () => {
      await this.verify();
      await writeAtomic(file, text, () => this.verify());
    });
    const tail = done.catch(() => undefined);
    this.queues.set(file, tail);
    void tail.then(() => {
      if (this.queues.get(file) === tail) this.queues.delete(file);
    });
    return done;
  }
}

// ---- writing ----

/**
 * Temp file, then rename. `verify` runs again between the two: Node has no openat(2), so the directory is reached
 * by its path each time. A directory swapped after the first check and before the temp file was written is caught
 * there (the temp file is removed, nothing is renamed into it); one swapped after the second check makes the rename
 * fail, since the temp file is not in the new directory. So no snapshot file is ever completed in a directory
 * that replaced the store.
 */
async function writeAtomic(file: string, text: string, verify: () => Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // 'wx': never through a planted file or symlink of the same name.
    await fsp.writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await verify();
    await fsp.rename(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw new Error(`cannot write ${file}: ${errText(err)}`, { cause: err });
  }
}

// ---- reading ----

/**
 * The text of a store file; null when it does not exist. Never through a link (O_NOFOLLOW), never blocked by a
 * FIFO (O_NONBLOCK; only a regular file is read), never a file of another user, never more than MAX_STORED_TEXT.
 */
async function readIfExists(file: string): Promise<string | null> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new Error(`${file}: a symbolic link, not a file promfork wrote; ignored`, { cause: err });
    throw new Error(`cannot read ${file}: ${errText(err)}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`${file}: not a regular file (promfork writes only files); ignored`);
    const uid = process.geteuid?.();
    if (uid !== undefined && st.uid !== uid) throw new Error(`${file}: owned by uid ${st.uid}, not written by this user; ignored`);
    if (st.size > MAX_STORED_TEXT) throw new Error(`${file}: too large (${st.size} bytes, at most ${MAX_STORED_TEXT}); ignored`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function removeIfExists(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot remove ${file}: ${errText(err)}`, { cause: err });
  }
}

// ---- the directory's safety, on every use ----

interface DirectoryIdentity {
  real: string;
  dev: number;
  ino: number;
}

/**
 * What is wrong with a component of the store directory's real path, or null. An ancestor must be owned by root or
 * this user (another owner could rename the store directory away and put a link or a directory of theirs in its
 * place); the directory itself must be a directory of this user, writable by no one else.
 */
function componentProblem(p: string, st: fs.Stats, isStore: boolean, uid: number | undefined): string | null {
  if (st.isSymbolicLink()) return `${p} became a symbolic link`;
  if (!st.isDirectory()) return `${p} is not a directory`;
  if (uid === undefined) return null;
  if (isStore) {
    if (st.uid !== uid) return `the directory is owned by uid ${st.uid}, not by this user (uid ${uid})`;
    if ((st.mode & 0o022) !== 0) return `the directory is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
    return null;
  }
  if (st.uid !== 0 && st.uid !== uid) return `its parent ${p} is owned by uid ${st.uid}, which could replace the store directory`;
  return null;
}

function ancestorsOf(real: string): string[] {
  const out: string[] = [];
  for (let p = path.dirname(real); ; p = path.dirname(p)) {
    out.push(p);
    if (p === path.dirname(p)) return out;
  }
}

/** The directory's identity, or what makes it unsafe now (async: workers and scrapes call it on every use). */
async function inspectDirectory(dir: string): Promise<DirectoryIdentity | string> {
  const uid = process.geteuid?.();
  let real: string;
  let st: fs.Stats;
  try {
    const own = await fsp.lstat(dir);
    if (own.isSymbolicLink()) return 'the path became a symbolic link';
    real = await fsp.realpath(dir);
    st = await fsp.lstat(real);
  } catch (err) {
    return `cannot inspect the directory (${errCode(err)})`;
  }
  const problem = componentProblem(real, st, true, uid);
  if (problem) return problem;
  for (const p of ancestorsOf(real)) {
    let a: fs.Stats;
    try {
      a = await fsp.lstat(p);
    } catch (err) {
      return `cannot inspect ${p} (${errCode(err)})`;
    }
    const bad = componentProblem(p, a, false, uid);
    if (bad) return bad;
  }
  return { real, dev: st.dev, ino: st.ino };
}

/**
 * For a reader that did not prepare the directory (the `promfork exporter` sidecar): the same checks, as a
 * PROMFORK_ERR_STORE_UNSAFE naming the problem and the fix.
 */
export async function checkStoreDirectory(dir: string): Promise<void> {
  const found = await inspectDirectory(path.resolve(dir));
  if (typeof found === 'string') {
    throw new PromforkError('PROMFORK_ERR_STORE_UNSAFE', `${SETTING} ${dir}: ${found}; the store directory must be private to the server's user (chmod 700, parents owned by root or that user), ${ANOTHER}`);
  }
}

/** The same checks of the ancestors, sync, for prepare(): the start fails with one line. */
function checkAncestors(dir: string): void {
  const uid = process.geteuid?.();
  const real = fs.realpathSync(dir);
  for (const p of ancestorsOf(real)) {
    const bad = componentProblem(p, fs.lstatSync(p), false, uid);
    if (bad) {
      throw new PromforkError(
        'PROMFORK_ERR_STORE_UNSAFE',
        `${SETTING} ${dir}: ${bad}; use a directory whose parents only root or this user own, ${ANOTHER}`,
      );
    }
  }
}

// ---- prepare (sync) ----

function ensureSafeDirectory(dir: string): void {
  const where = `${SETTING} ${dir}`;
  let st = lstatOrNull(dir, where);
  if (st === null) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new PromforkError(
        'PROMFORK_ERR_STORE_DIR',
        `${where}: cannot create the directory (${errCode(err)}); create it with mkdir -m 700 ${dir}, ${ANOTHER}`,
        { cause: err },
      );
    }
    st = lstatOrNull(dir, where);
    if (st === null) {
      throw new PromforkError('PROMFORK_ERR_STORE_DIR', `${where}: the directory vanished after its creation; ${ANOTHER}`);
    }
  }
  if (st.isSymbolicLink()) {
    let target = '';
    try {
      target = ` to ${fs.readlinkSync(dir)}`;
    } catch {
      // the target is only a courtesy
    }
    throw new PromforkError(
      'PROMFORK_ERR_STORE_UNSAFE',
      `${where}: the path is a symbolic link${target}, which another user could redirect; give the real directory's path, ${ANOTHER}`,
    );
  }
  if (!st.isDirectory()) {
    throw new PromforkError(
      'PROMFORK_ERR_STORE_DIR',
      `${where}: the path exists and is not a directory; remove it, ${ANOTHER}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new PromforkError(
      'PROMFORK_ERR_STORE_UNSAFE',
      `${where}: the directory is owned by uid ${st.uid}, not by this user (uid ${uid}); run chown ${uid} ${dir}, ${ANOTHER}`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new PromforkError(
      'PROMFORK_ERR_STORE_UNSAFE',
      `${where}: the directory is writable by group or others (mode ${mode}); run chmod 700 ${dir}, ${ANOTHER}`,
    );
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new PromforkError(
      'PROMFORK_ERR_STORE_DIR',
      `${where}: the directory is not usable by this user (${errCode(err)}, mode ${mode}); run chmod 700 ${dir}, ${ANOTHER}`,
      { cause: err },
    );
  }
}

function lstatOrNull(dir: string, where: string): fs.Stats | null {
  try {
    return fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PromforkError(
      'PROMFORK_ERR_STORE_DIR',
      `${where}: cannot inspect the path (${errCode(err)}); check the permissions of its parent directories, ${ANOTHER}`,
      { cause: err },
    );
  }
}

/**
 * Remove promfork's files (snapshots, retired folds, temp files) left by this run's primary pid or by a primary
 * that is no longer alive; keep a live primary's (two servers may share a directory). Foreign entries are never
 * touched, only reported in one warning.
 */
function clearStaleFiles(dir: string, ppid: number, log: StoreLog): void {
  const where = `${SETTING} ${dir}`;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new PromforkError('PROMFORK_ERR_STORE_DIR', `${where}: cannot list the directory (${errCode(err)}); run chmod 700 ${dir}, ${ANOTHER}`, {
      cause: err,
    });
  }
  const foreign: string[] = [];
  const alive = new Map<number, boolean>();
  for (const entry of entries) {
    const owner = ownerOfFile(entry.name);
    if (owner === null || !entry.isFile()) {
      foreign.push(entry.name);
      continue;
    }
    if (owner !== ppid) {
      if (!alive.has(owner)) alive.set(owner, isPromforkPrimary(owner));
      if (alive.get(owner) === true) continue;
    }
    const file = path.join(dir, entry.name);
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new PromforkError(
        'PROMFORK_ERR_STORE_DIR',
        `${where}: cannot remove the stale file ${entry.name} of an earlier run (${errCode(err)}); remove it by hand, ${ANOTHER}`,
        { cause: err },
      );
    }
  }
  if (foreign.length > 0) {
    foreign.sort();
    const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
    const what = foreign.length === 1 ? '1 entry' : `${foreign.length} entries`;
    log.warning(`${where}: ignoring ${what} that promfork did not write (${shown}); promfork leaves them in place`);
  }
}

// ---- helpers ----

function isPid(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) > 0;
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
