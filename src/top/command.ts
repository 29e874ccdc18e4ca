// `promfork top [options]`: a live terminal view of a running server, read from its metrics endpoint.

import { parseTopArgs, TOP_USAGE } from './options.js';
import { runLive, runOnce } from './live.js';

export async function runTop(argv: string[]): Promise<void> {
  const opts = parseTopArgs(argv);
  if (opts.help) {
    process.stdout.write(TOP_USAGE);
    return;
  }
  if (opts.once) await runOnce(opts);
  else await runLive(opts);
}
