// The directory store on a real filesystem: the safety checks of prepare(), the clearing rules, atomic writes,
// reading with bad files around, and a real failing write (no mocks).
//
// The failing write: tests run as root, and permissions do not stop root, so a read-only directory proves nothing.
// A file size limit does stop root: a child process runs under `ulimit -f` (RLIMIT_FSIZE), so its write of a large
// snapshot fails part-way with EFBIG (Node ignores SIGXFSZ), leaving a partial temp file behind exactly as a full
// disk (ENOSPC) would. That works in any container on any Linux filesystem, without mount rights.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DirectoryStore } from '../../src/store/directory-store.js';
import type { Snapshot } from '../../src/store/snapshot.js';
import { PromforkError } from '../../src/errors.js';
import { snapshot as makeSnapshot } from '../helpers/snapshots.js';
import { until } from '../helpers/poll.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STORE_MODULE = pathToFileURL(path.join(ROOT, 'src', 'store', 'directory-store.ts')).href;
const TAIL = 'or choose another directory with --multiproc-dir or PROMETHEUS_MULTIPROC_DIR';
const PPID = process.pid; // this test process plays the primary
const isRoot = process.getuid?.() === 0;

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-store-test-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));

let counter = 0;
/** A fresh path under the test's temp dir (not created). */
function freshPath(): string {
  return path.join(base, `d${++counter}`);
}

function logger(): { warnings: string[]; log: { warning(msg: string): void } } {
  const warnings: string[] = [];
  return { warnings, log: { warning: (msg) => warnings.push(msg) } };
}

function prepared(ppid = PPID): { dir: string; store: DirectoryStore; warnings: string[] } {
  const dir = freshPath();
  const { warnings, log } = logger();
  const store = DirectoryStore.prepare(dir, { ppid, log });
  return { dir, store, warnings };
}

function snapshot(pid: number, seat: number, seq = 1, ppid = PPID, value = 42): Snapshot {
  return makeSnapshot(pid, seat, seq, ppid, value);
}

/** A pid that was alive a moment ago and is dead now: a child that exited (and was reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  return pid;
}

function expectRefusal(dir: string, code: string, message: string): void {
  const { warnings, log } = logger();
  assert.throws(
    () => DirectoryStore.prepare(dir, { ppid: PPID, log }),
    (err: unknown) => {
      assert.ok(err instanceof PromforkError);
      assert.equal(err.code, code);
      assert.equal(err.exitCode, 1);
      assert.equal(err.message, message);
      return true;
    },
  );
  assert.deepEqual(warnings, []);
}

function listing(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe('prepare: the directory', () => {
  test('a missing directory is created, with its parents, mode 0700', () => {
    const parent = freshPath();
    const dir = path.join(parent, 'a', 'multiproc');
    const { warnings, log } = logger();
    const store = DirectoryStore.prepare(dir, { ppid: PPID, log });
    const st = fs.lstatSync(dir);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(store.dir, dir);
    assert.equal(store.kind, 'directory');
    assert.deepEqual(listing(dir), []);
    assert.deepEqual(warnings, []);
  });

  test('an existing safe directory is accepted and keeps its mode', () => {
    const dir = freshPath();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o750);
    DirectoryStore.prepare(dir, { ppid: PPID, log: logger().log });
    assert.equal(fs.statSync(dir).mode & 0o777, 0o750);
  });

  test('a symbolic link is refused, even to a safe directory', () => {
    const target = freshPath();
    fs.mkdirSync(target, { mode: 0o700 });
    const link = freshPath();
    fs.symlinkSync(target, link);
    expectRefusal(
      link,
      'PROMFORK_ERR_STORE_UNSAFE',
      `--multiproc-dir ${link}: the path is a symbolic link to ${target}, which another user could redirect; give the real directory's path, ${TAIL}`,
    );
  });

  test('a group-writable directory is refused', () => {
    const dir = freshPath();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o770);
    expectRefusal(
      dir,
      'PROMFORK_ERR_STORE_UNSAFE',
      `--multiproc-dir ${dir}: the directory is writable by group or others (mode 0770); run chmod 700 ${dir}, ${TAIL}`,
    );
  });

  test('a world-writable directory is refused, sticky bit or not', () => {
    const dir = freshPath();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o702);
    expectRefusal(
      dir,
      'PROMFORK_ERR_STORE_UNSAFE',
      `--multiproc-dir ${dir}: the directory is writable by group or others (mode 0702); run chmod 700 ${dir}, ${TAIL}`,
    );
    fs.chmodSync(dir, 0o1777);
    expectRefusal(
      dir,
      'PROMFORK_ERR_STORE_UNSAFE',
      `--multiproc-dir ${dir}: the directory is writable by group or others (mode 1777); run chmod 700 ${dir}, ${TAIL}`,
    );
  });

  test('a file in place of the directory is refused and left alone', () => {
    const file = freshPath();
    fs.writeFileSync(file, 'data');
    expectRefusal(
      file,
      'PROMFORK_ERR_STORE_DIR',
      `--multiproc-dir ${file}: the path exists and is not a directory; remove it, ${TAIL}`,
    );
    assert.equal(fs.readFileSync(file, 'utf8'), 'data');
  });

  test('a directory owned by another user is refused', () => {
    const uid = process.getuid?.();
    assert.ok(uid !== undefined);
    let dir: string;
    let owner: number;
    if (isRoot) {
      dir = freshPath();
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chownSync(dir, 65534, 65534);
      owner = 65534;
    } else {
      dir = path.parse(base).root; // `/`: mode 0755, owned by root
      owner = 0;
    }
    expectRefusal(
      dir,
      'PROMFORK_ERR_STORE_UNSAFE',
      `--multiproc-dir ${dir}: the directory is owned by uid ${owner}, not by this user (uid ${uid}); run chown ${uid} ${dir}, ${TAIL}`,
    );
  });

  test('a directory that cannot be created is refused', () => {
    const file = freshPath();
    fs.writeFileSync(file, '');
    const dir = path.join(file, 'sub');
    expectRefusal(
      dir,
      'PROMFORK_ERR_STORE_DIR',
      `--multiproc-dir ${dir}: cannot inspect the path (ENOTDIR); check the permissions of its parent directories, ${TAIL}`,
    );
  });
});

describe('prepare: clearing old files', () => {
  test("removes this run's and dead primaries' files; keeps a live primary's and foreign files, warned once", async () => {
    const dead = await deadPid();
    // A live promfork primary of another run (its process title says so); a live process that is not one (the test
    // runner) counts as dead: its pid in a file name is recycled or planted.
    const primary = spawn(process.execPath, ['-e', "process.title = 'promfork: master'; setInterval(() => {}, 1000)"], { stdio: 'ignore' });
    after(() => primary.kill('SIGKILL'));
    const live = primary.pid!;
    const notPrimary = process.ppid;
    await until('the other primary has its title', () => (fs.readFileSync(`/proc/${live}/cmdline`, 'utf8').startsWith('promfork: master') ? true : undefined));
    const dir = freshPath();
    fs.mkdirSync(dir, { mode: 0o700 });
    const files = {
      removed: [
        `promfork-${dead}-5.json`,
        `promfork-${dead}-retired.json`,
        `.promfork-${dead}-5.json.0a1b2c.tmp`,
        `promfork-${PPID}-7.json`,
        `promfork-${PPID}-retired.json`,
        `promfork-${notPrimary}-3.json`,
      ],
      kept: [`promfork-${live}-8.json`, `promfork-${live}-retired.json`, `.promfork-${live}-8.json.ffff.tmp`],
      foreign: ['counter_1.db', 'gauge_all_2.db', 'promfork-notes.txt', `promfork-0${dead}-1.json`],
    };
    for (const name of [...files.removed, ...files.kept, ...files.foreign]) fs.writeFileSync(path.join(dir, name), '{}');
    fs.mkdirSync(path.join(dir, `promfork-${dead}-9.json`)); // our name, but a directory: not ours, not touched

    const { warnings, log } = logger();
    DirectoryStore.prepare(dir, { ppid: PPID, log });

    const foreign = [...files.foreign, `promfork-${dead}-9.json`].sort();
    assert.deepEqual(listing(dir), [...files.kept, ...foreign].sort());
    assert.deepEqual(warnings, [
      `--multiproc-dir ${dir}: ignoring 5 entries that promfork did not write (${foreign.join(', ')}); promfork leaves them in place`,
    ]);
    for (const name of files.foreign) assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), '{}');
  });

  test('many foreign entries: one warning naming the first five', () => {
    const dir = freshPath();
    fs.mkdirSync(dir, { mode: 0o700 });
    for (let i = 1; i <= 7; i++) fs.writeFileSync(path.join(dir, `counter_${i}.db`), '');
    const { warnings, log } = logger();
    DirectoryStore.prepare(dir, { ppid: PPID, log });
    assert.deepEqual(warnings, [
      `--multiproc-dir ${dir}: ignoring 7 entries that promfork did not write (counter_1.db, counter_2.db, counter_3.db, counter_4.db, counter_5.db, and 2 more); promfork leaves them in place`,
    ]);
    assert.equal(listing(dir).length, 7);
  });
});

describe('writing and reading', () => {
  test('an atomic write, then readAll returns exactly this run’s snapshots, ordered by seat', async () => {
    const { dir, store } = prepared();
    const other = new DirectoryStore(dir, { ppid: process.ppid }); // another primary sharing the directory
    await store.writeSnapshot(snapshot(101, 1));
    await store.writeSnapshot(snapshot(100, 0));
    await other.writeSnapshot(snapshot(102, 0, 1, process.ppid));

    assert.deepEqual(await store.readAll(), { snapshots: [snapshot(100, 0), snapshot(101, 1)], problems: [] });
    assert.deepEqual(await store.readSnapshot(101), snapshot(101, 1));
    assert.equal(await store.readSnapshot(999), null);
    assert.deepEqual(
      listing(dir),
      [`promfork-${PPID}-100.json`, `promfork-${PPID}-101.json`, `promfork-${process.ppid}-102.json`].sort(),
    );
    assert.equal(fs.statSync(store.fileFor(100)).mode & 0o777, 0o600);
  });

  test('a later write replaces the snapshot; concurrent writes land in call order', async () => {
    const { dir, store } = prepared();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.writeSnapshot(snapshot(100, 0, i + 1, PPID, i))));
    assert.deepEqual(await store.readSnapshot(100), snapshot(100, 0, 20, PPID, 19));
    assert.deepEqual(listing(dir), [`promfork-${PPID}-100.json`]);
  });

  test('a slow large write followed by a quick small one: the later one wins', async () => {
    const { store } = prepared();
    const big = snapshot(100, 0, 1);
    big.metrics[0].values = Array.from({ length: 50_000 }, (_, i) => ({ value: i, labels: { worker_id: 'worker_0', n: i } }));
    const small = snapshot(100, 0, 2);
    await Promise.all([store.writeSnapshot(big), store.writeSnapshot(small)]);
    assert.deepEqual(await store.readSnapshot(100), small);
  });

  test('the file holds the snapshot as it was when writeSnapshot was called', async () => {
    const { store } = prepared();
    const s = snapshot(100, 0);
    const written = store.writeSnapshot(s);
    s.seq = 99;
    await written;
    assert.equal((await store.readSnapshot(100))?.seq, 1);
  });

  test('NaN and infinite sample values survive the round trip', async () => {
    const { dir, store } = prepared();
    const s = snapshot(100, 0);
    s.metrics.push({
      name: 'app_gauge',
      help: 'odd values',
      type: 'gauge',
      aggregator: 'max',
      values: [
        { value: Number.NaN, labels: { k: 'nan' } },
        { value: Number.POSITIVE_INFINITY, labels: { k: 'inf' } },
        { value: Number.NEGATIVE_INFINITY, labels: { k: '-inf' } },
      ],
    });
    await store.writeSnapshot(s);
    assert.deepEqual(await store.readSnapshot(100), s);
    assert.deepEqual((await store.readAll()).snapshots, [s]);
    const raw = JSON.parse(fs.readFileSync(path.join(dir, `promfork-${PPID}-100.json`), 'utf8'));
    assert.deepEqual(
      raw.metrics[2].values.map((v: { value: unknown }) => v.value),
      ['NaN', '+Inf', '-Inf'],
    );
  });

  test('corrupt files are reported in problems, one each, and the good snapshots are returned', async () => {
    const { dir, store } = prepared();
    await store.writeSnapshot(snapshot(100, 0));
    const bad = (pid: number, content: string): string => {
      const file = path.join(dir, `promfork-${PPID}-${pid}.json`);
      fs.writeFileSync(file, content);
      return file;
    };
    const badJson = bad(200, '{"version":1,');
    const notObject = bad(201, '[1,2]');
    const badVersion = bad(202, JSON.stringify({ ...snapshot(202, 2), version: 2 }));
    const badShape = bad(203, JSON.stringify({ ...snapshot(203, 3), metrics: 'none' }));
    const badSample = bad(204, JSON.stringify({ ...snapshot(204, 4), metrics: [{ ...snapshot(204, 4).metrics[0], values: [{ value: 'x', labels: {} }] }] }));
    const badType = bad(205, JSON.stringify({ ...snapshot(205, 5), metrics: [{ ...snapshot(205, 5).metrics[0], type: 'untyped' }] }));
    const empty = bad(206, '');

    const { snapshots, problems } = await store.readAll();
    assert.deepEqual(snapshots, [snapshot(100, 0)]);
    assert.equal(problems.length, 7);
    const byFile = new Map(problems.map((p) => [p.slice(0, p.indexOf(': ')), p.slice(p.indexOf(': ') + 2)]));
    assert.match(byFile.get(badJson) ?? '', /^invalid JSON \(.+\)$/);
    assert.equal(byFile.get(notObject), 'not a snapshot (not a JSON object)');
    assert.equal(byFile.get(badVersion), 'unsupported snapshot version 2 (expected 1)');
    assert.equal(byFile.get(badShape), 'bad metrics (not an array)');
    assert.equal(byFile.get(badSample), 'metric family #0: bad sample value "x" (gunicorn_worker_requests_total)');
    assert.equal(byFile.get(badType), 'metric family #0: bad type "untyped" (gunicorn_worker_requests_total)');
    assert.match(byFile.get(empty) ?? '', /^invalid JSON \(.+\)$/);

    await assert.rejects(store.readSnapshot(202), { message: `${badVersion}: unsupported snapshot version 2 (expected 1)` });
  });

  test('a snapshot whose pid differs from its file name is rejected', async () => {
    const { dir, store } = prepared();
    const file = path.join(dir, `promfork-${PPID}-300.json`);
    fs.writeFileSync(file, JSON.stringify(snapshot(301, 0)));
    const wrongRun = path.join(dir, `promfork-${PPID}-302.json`);
    fs.writeFileSync(wrongRun, JSON.stringify(snapshot(302, 1, 1, PPID + 1)));

    const { snapshots, problems } = await store.readAll();
    assert.deepEqual(snapshots, []);
    assert.deepEqual(problems.sort(), [
      `${file}: holds the snapshot of pid 301, but its name says pid 300`,
      `${wrongRun}: holds a snapshot of primary ${PPID + 1}, but its name says ${PPID}`,
    ]);
    await assert.rejects(store.readSnapshot(300), { message: `${file}: holds the snapshot of pid 301, but its name says pid 300` });
  });

  test('a snapshot of another primary is refused by writeSnapshot, as a rejection', async () => {
    const { dir, store } = prepared();
    const p = store.writeSnapshot(snapshot(100, 0, 1, PPID + 1));
    assert.ok(p instanceof Promise);
    await assert.rejects(p, { message: `cannot write the snapshot of pid 100: it belongs to primary ${PPID + 1}, this store to ${PPID}` });
    assert.deepEqual(listing(dir), []);
  });

  test('removeSnapshot removes the file; removing a missing one is fine', async () => {
    const { dir, store } = prepared();
    await store.writeSnapshot(snapshot(100, 0));
    await store.writeSnapshot(snapshot(101, 1));
    await store.removeSnapshot(100);
    assert.equal(await store.readSnapshot(100), null);
    assert.deepEqual(listing(dir), [`promfork-${PPID}-101.json`]);
    await store.removeSnapshot(100);
    assert.deepEqual((await store.readAll()).snapshots, [snapshot(101, 1)]);
  });

  test('removeSnapshot waits for a pending write of that pid', async () => {
    const { dir, store } = prepared();
    const written = store.writeSnapshot(snapshot(100, 0));
    await store.removeSnapshot(100);
    await written;
    assert.deepEqual(listing(dir), []);
  });

  test('the retired fold: null before any write, then a round trip, non-finite numbers included', async () => {
    const { dir, store } = prepared();
    assert.equal(await store.readRetired(), null);
    const fold = { seats: { worker_0: { requests: 12, sum: Number.POSITIVE_INFINITY } }, list: [Number.NaN, -1, 'x'], n: null };
    await store.writeRetired(fold);
    assert.deepEqual(await store.readRetired(), fold);
    await store.writeRetired({ seats: {} });
    assert.deepEqual(await store.readRetired(), { seats: {} });
    assert.deepEqual(listing(dir), [`promfork-${PPID}-retired.json`]);
    assert.equal(fs.statSync(store.retiredFile).mode & 0o777, 0o600);
    // The retired file is not a worker snapshot.
    assert.deepEqual(await store.readAll(), { snapshots: [], problems: [] });
  });

  test('clear removes this run’s files only', async () => {
    const { dir, store } = prepared();
    const other = new DirectoryStore(dir, { ppid: process.ppid });
    await store.writeSnapshot(snapshot(100, 0));
    await store.writeRetired({ a: 1 });
    await other.writeSnapshot(snapshot(100, 0, 1, process.ppid));
    fs.writeFileSync(path.join(dir, 'counter_1.db'), '');
    await store.clear();
    assert.deepEqual(listing(dir), ['counter_1.db', `promfork-${process.ppid}-100.json`]);
  });

  test('close waits for pending writes; later writes reject', async () => {
    const { store } = prepared();
    void store.writeSnapshot(snapshot(100, 0));
    await store.close();
    assert.deepEqual(await store.readSnapshot(100), snapshot(100, 0));
    await assert.rejects(store.writeSnapshot(snapshot(100, 0, 2)), {
      message: `cannot write ${store.fileFor(100)}: the store is closed`,
    });
  });
});

describe('a failing write', () => {
  test('rejects, leaves no temp file, and the previous snapshot intact (real EFBIG under ulimit -f)', { skip: process.platform !== 'linux' }, async () => {
    const { dir, store } = prepared();
    const previous = snapshot(100, 0, 1);
    await store.writeSnapshot(previous);

    // The child writes a ~2 MB snapshot of the same worker with its file size limit at 256 blocks (128 KiB
    // for dash, 256 KiB for bash): the write starts, then fails part-way.
    const code = `
      const { DirectoryStore } = await import(${JSON.stringify(STORE_MODULE)});
      const store = new DirectoryStore(process.env.STORE_DIR, { ppid: Number(process.env.STORE_PPID) });
      const values = Array.from({ length: 20000 }, (_, i) => ({ value: i, labels: { path: '/p/' + i + '/' + 'x'.repeat(50) } }));
      const s = { version: 1, pid: 100, seat: 0, ppid: Number(process.env.STORE_PPID), seq: 2, takenAt: 1, metrics: [
        { name: 'big_total', help: 'big', type: 'counter', aggregator: 'sum', values } ] };
      const result = await store.writeSnapshot(s).then(
        () => ({ ok: true }),
        (err) => ({ ok: false, message: err.message, code: err.cause?.code }));
      process.stdout.write(JSON.stringify(result));
    `;
    const child = spawn(
      '/bin/sh',
      ['-c', 'ulimit -f 256 && exec "$@"', 'sh', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code],
      { cwd: ROOT, env: { ...process.env, STORE_DIR: dir, STORE_PPID: String(PPID), TSX_DISABLE_CACHE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(status, 0, err);

    const result = JSON.parse(out) as { ok: boolean; message?: string; code?: string };
    assert.deepEqual(result, {
      ok: false,
      code: 'EFBIG',
      message: `cannot write ${store.fileFor(100)}: EFBIG: file too large, write`,
    });
    assert.deepEqual(listing(dir), [`promfork-${PPID}-100.json`]); // no temp file left behind
    assert.deepEqual(await store.readSnapshot(100), previous);
    assert.deepEqual(await store.readAll(), { snapshots: [previous], problems: [] });
  });
});
