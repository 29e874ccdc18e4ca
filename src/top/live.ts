// The loops of `promfork top`: --once (two scrapes --interval apart, one plain frame), and the live view
// (a frame every --interval seconds; on a terminal redrawn in place on the alternate screen and quit with q
// or Ctrl-C; otherwise frames printed one after another). In the live view a failed scrape is shown in the
// frame and retried at the next tick.

import { isPromforkError, type PromforkError } from '../errors.js';
import { displayUrl, fetchScrape } from './fetch.js';
import { computeFrame, type Frame, type ScrapeSnapshot } from './frame.js';
import type { TopOptions } from './options.js';
import { fitScreen, renderError, renderFrame } from './render.js';

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, cursor hidden
const LEAVE = '\x1b[?25h\x1b[?1049l'; // cursor shown, main screen back as it was
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';
const CTRL_C = '\x03';

export async function runOnce(opts: TopOptions): Promise<void> {
  const url = displayUrl(opts.url);
  const first = await fetchScrape(opts.url, opts.namespace, opts.fetch);
  // A --server that is not there fails now, not after the interval.
  if (opts.servers.length > 0) computeFrame(null, first, { namespace: opts.namespace, url, servers: opts.servers });
  await sleep(first.at + opts.intervalSeconds * 1000 - performance.now());
  const second = await fetchScrape(opts.url, opts.namespace, opts.fetch);
  const lines = renderFrame(computeFrame(first, second, { namespace: opts.namespace, url, servers: opts.servers }));
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function runLive(opts: TopOptions): Promise<void> {
  const out = process.stdout;
  const tty = out.isTTY === true;
  const url = displayUrl(opts.url);
  const intervalMs = opts.intervalSeconds * 1000;
  let prev: ScrapeSnapshot | null = null;
  let frame: Frame | null = null;
  let lines: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const draw = () => {
    if (stopped) return;
    if (!tty) {
      out.write(`${lines.join('\n')}\n\n`);
      return;
    }
    const shown = fitScreen([...lines, '', 'q or Ctrl-C: quit'], out.columns, out.rows);
    out.write(HOME + shown.map((l) => l + CLEAR_LINE_END).join('\n') + CLEAR_BELOW);
  };

  const tick = async () => {
    try {
      const cur = await fetchScrape(opts.url, opts.namespace, opts.fetch);
      frame = computeFrame(prev, cur, { namespace: opts.namespace, url, servers: opts.servers });
      prev = cur;
      lines = renderFrame(frame);
    } catch (err) {
      if (!isPromforkError(err)) throw err;
      const failure: { error: PromforkError; time: Date } = { error: err, time: new Date() };
      lines = frame ? renderFrame(frame, { error: failure, intervalSeconds: opts.intervalSeconds }) : renderError(url, failure, opts.intervalSeconds);
    }
    draw();
  };

  return new Promise<void>((_resolve, reject) => {
    // The live view ends only through stop(), which exits the process with the terminal restored.
    const stdin = process.stdin;
    const restore = () => {
      if (tty) out.write(LEAVE);
      if (stdin.isTTY && tty) stdin.setRawMode(false);
    };
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      restore();
      process.off('exit', restore);
      // An in-flight scrape would hold the process until its deadline: leave now, the terminal is restored.
      process.exit(0);
    };
    process.on('exit', restore);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, stop);
    if (tty) {
      out.write(ENTER);
      out.on('resize', draw);
      if (stdin.isTTY) {
        stdin.setRawMode(true);
        stdin.setEncoding('utf8');
        stdin.on('data', (key: string) => {
          if (key.includes('q') || key.includes('Q') || key.includes(CTRL_C)) stop();
        });
        stdin.resume();
      }
    }
    // Ticks on a fixed grid from the start; a scrape slower than the interval skips the ticks it overran.
    const started = performance.now();
    const loop = async () => {
      try {
        await tick();
      } catch (err) {
        stopped = true;
        restore();
        reject(err);
        return;
      }
      if (stopped) return;
      const elapsed = performance.now() - started;
      timer = setTimeout(() => void loop(), intervalMs - (elapsed % intervalMs));
    };
    void loop();
  });
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
