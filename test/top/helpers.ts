// Running `promfork top` (dist/cli.js) in tests: to completion with a deadline, or in the background
// with its output watched; always stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { CLI, ROOT } from '../helpers/server.js';

export interface TopRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) killQuietly(c.pid!);
});
process.on('exit', () => {
  for (const c of children) killQuietly(c.pid!);
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  for (const k of ['PROMETHEUS_METRICS_PORT', 'NODE_OPTIONS']) delete e[k];
  return e;
}

export class TopProcess {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<TopRun>;
  private listeners: (() => void)[] = [];

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [CLI, 'top', ...args], { cwd: ROOT, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.proc);
    this.proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
      for (const l of this.listeners) l();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) =>
      this.proc.once('close', (code, signal) => {
        children.delete(this.proc);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      }),
    );
  }

  /** Resolves when `cond(stdout)` holds; fails past the deadline with the output. */
  waitForOutput(cond: (stdout: string) => boolean, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond(this.stdout)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`timed out after ${timeoutMs} ms; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      this.listeners.push(check);
      check();
    });
  }
}

/** Run `promfork top ARGS` to its exit; killed (by pid) and failed past the deadline. */
export async function runTop(args: string[], timeoutMs = 20_000): Promise<TopRun> {
  const p = new TopProcess(args);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      killQuietly(p.proc.pid!);
      reject(new Error(`promfork top ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout:\n${p.stdout}\nstderr:\n${p.stderr}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Split a frame row into its cells (columns are two or more spaces apart; single spaces are inside a cell). */
export function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}
