// The test command (`npm test`, and .ci/run on every Node line): a preflight for the system tools the tests run,
// then node:test over the test files, on the Node binary running this script (process.execPath).
//
//   node --import tsx scripts/test.ts [--preflight] [PATH...]
//
// PATH: test files or directories (default: every test/*/*.test.ts). --preflight: check (and install) the tools,
// run nothing. A missing tool is installed with apt-get when this runs as root on a Debian-like system; otherwise
// the run stops at once with the command to run. PROMFORK_TEST_SKIP=NAME,... opts out of the tests that need a
// tool (names: test/helpers/tools.ts); what did not run is named before and after the run.

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, installCommand, optedOut, SKIP_ENV, TOOLS, type Tool } from '../test/helpers/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Node lines promfork supports; others run best effort. */
const SUPPORTED_MAJORS = [22, 24, 26];
/** Test files that need Redis (redis-server, redis-cli) throughout: not run at all with PROMFORK_TEST_SKIP=redis. */
const NEEDS_REDIS = /from '\.\.\/helpers\/redis(-server|-topology)?\.js'/;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function missingTools(skip: Set<string>): Tool[] {
  return TOOLS.filter((t) => !skip.has(t.optOut) && findTool(t.bin) === undefined);
}

/** Install the missing tools' packages when root with apt-get; else stop with the exact command. */
function preflight(skip: Set<string>): void {
  const missing = missingTools(skip);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  const names = missing.map((t) => `${t.bin} (${t.pkg})`).join(', ');
  const optOut = `${SKIP_ENV}=${[...new Set([...skip, ...missing.map((t) => t.optOut)])].join(',')}`;
  const aptGet = findTool('apt-get');
  if (process.getuid?.() === 0 && aptGet !== undefined) {
    process.stdout.write(`preflight: installing ${pkgs.join(' ')} (missing: ${names})\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const steps = [
      ['update', '-qq'],
      ['install', '-y', '-qq', '--no-install-recommends', ...pkgs],
    ];
    for (const args of steps) {
      const r = spawnSync(aptGet, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) {
        fail(`preflight: \`apt-get ${args.join(' ')}\` failed (exit ${r.status ?? r.signal}); install ${pkgs.join(' ')} and run npm test again, or opt out explicitly: ${optOut} npm test`);
      }
    }
    const still = missingTools(skip);
    if (still.length > 0) fail(`preflight: still missing after apt-get: ${still.map((t) => t.bin).join(', ')}`);
    return;
  }
  const how = aptGet !== undefined ? `run \`${installCommand(pkgs)}\`` : `install ${pkgs.join(', ')} (Debian package names)`;
  fail(`preflight: the tests need ${names}: ${how}, then npm test again; or opt out explicitly: ${optOut} npm test`);
}

/** The *.test.ts files under each PATH (a file, or a directory searched recursively; default: test/). */
function testFiles(args: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = path.resolve(ROOT, rel);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      fail(`no such test file or directory: ${rel}`);
    }
    if (!isDir) return void out.push(path.relative(ROOT, abs));
    for (const e of readdirSync(abs).sort()) {
      const child = path.join(abs, e);
      if (e.endsWith('.test.ts')) out.push(path.relative(ROOT, child));
      else if (e !== 'fixtures' && e !== 'node_modules' && statSync(child).isDirectory()) walk(child);
    }
  };
  for (const r of args.length > 0 ? args : ['test']) walk(r);
  return [...new Set(out)];
}

function optOutReport(skip: Set<string>, excluded: string[]): string {
  if (skip.size === 0) return '';
  const lines = [`${SKIP_ENV}=${[...skip].join(',')}: these checks do NOT run:`];
  for (const name of skip) {
    for (const t of TOOLS.filter((x) => x.optOut === name)) lines.push(`  - ${name}: ${t.covers} [${t.bin}]`);
  }
  if (excluded.length > 0) lines.push(`  - test files not run (redis): ${excluded.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

function main(): void {
  const argv = process.argv.slice(2);
  const preflightOnly = argv.includes('--preflight');
  const paths = argv.filter((a) => a !== '--preflight');
  let skip: Set<string>;
  try {
    skip = optedOut();
  } catch (err) {
    fail((err as Error).message);
  }
  preflight(skip);
  const major = Number(process.versions.node.split('.')[0]);
  const line = SUPPORTED_MAJORS.includes(major)
    ? `Node ${process.version}`
    : `Node ${process.version}, best effort (the supported lines are ${SUPPORTED_MAJORS.join(', ')})`;
  if (preflightOnly) {
    process.stdout.write(`preflight: every tool the tests run is installed (${line})\n${optOutReport(skip, [])}`);
    return;
  }
  let files = testFiles(paths);
  const excluded = skip.has('redis') ? files.filter((f) => NEEDS_REDIS.test(readFileSync(path.join(ROOT, f), 'utf8'))) : [];
  files = files.filter((f) => !excluded.includes(f));
  const report = optOutReport(skip, excluded);
  process.stdout.write(`promfork tests: ${files.length} files on ${line}, ${process.execPath}\n${report}`);
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { cwd: ROOT, stdio: 'inherit' });
  // Ctrl-C reaches the test runner too (same process group): let it finish its report.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (report) process.stdout.write(`\n${report}`);
    process.exit(code ?? (signal ? 1 : 0));
  });
}

main();
