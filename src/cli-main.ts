// `promfork [options] MODULE[:EXPORT]` (loaded by ./cli.ts once SIGUSR1 is held): resolve the configuration,
// then hand it to the arbiter. A user's mistake ends in one line and Gunicorn's exit status; our own bugs keep their stack.

import { resolveConfig, renderHelp, renderSettings } from './config/index.js';
import { isPromforkError } from './errors.js';
import { Arbiter } from './arbiter/arbiter.js';
import { VERSION } from './version.js';
import { loadApp, parseAppSpec, resolveAppModule } from './workers/app-loader.js';
import { resolveWorkerClass } from './workers/worker-classes.js';
import { checkStoreSettings } from './store/open-store.js';

export async function main(argv: string[]): Promise<void> {
  const { config, help, version, checkConfig } = await resolveConfig(argv);
  if (help) {
    process.stdout.write(renderHelp());
    return;
  }
  if (version) {
    process.stdout.write(`promfork ${VERSION}\n`);
    return;
  }
  const s = config.settings;
  if (!s.app) throw new Error('resolveConfig returned no app'); // it throws PROMFORK_ERR_NO_APP itself
  const workerClass = await resolveWorkerClass(s.workerClass, s.chdir, s.metrics);
  // Fail fast on a missing module, without importing the app into the primary.
  resolveAppModule(parseAppSpec(s.app).module, s.chdir);
  await checkStoreSettings(s);
  if (checkConfig) {
    await loadApp(s.app, s.chdir);
    for (const line of config.notices ?? []) process.stderr.write(`warning: ${line}\n`);
    process.stdout.write(renderSettings(s));
    process.exit(0);
  }
  await new Arbiter(config, workerClass).run();
}

// Subcommands: `promfork exporter` (the sidecar) and `promfork top` (the live view); anything else runs a server.
function dispatch(argv: string[]): Promise<void> {
  if (argv[0] === 'exporter') return import('./exporter/sidecar-command.js').then((m) => m.runSidecar(argv.slice(1)));
  if (argv[0] === 'top') return import('./top/command.js').then((m) => m.runTop(argv.slice(1)));
  return main(argv);
}

const command = dispatch(process.argv.slice(2));
command.catch((err: unknown) => {
  if (isPromforkError(err)) {
    process.stderr.write(`${err.toLine()}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`promfork: internal error (please report it): ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
