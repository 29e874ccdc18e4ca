// Resolution of the whole configuration, with Gunicorn's precedence (lowest first):
// built-in defaults, defaults read from the environment, the config file, PROMFORK_CMD_ARGS
// (parsed like the command line), the command line.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { PromforkError } from '../errors.js';
import type { Config, Settings } from './types.js';
import { loadConfigFile, type LoadedConfigFile } from './load-file.js';
import { parseArgs, type ParsedArgs } from './parse-args.js';
import { layoutEnvironment, underEnvironment } from './python-exporter-yaml.js';
import { CMD_ARGS_ENV, SETTINGS, defaultSettings } from './settings.js';
import { shellSplit } from './shell-split.js';

export const DEFAULT_CONFIG_FILES = ['promfork.config.js', 'promfork.config.mjs'] as const;

export interface ResolvedConfig {
  config: Config;
  checkConfig: boolean;
  help: boolean;
  version: boolean;
}

/** Which config file to read: -c on the command line, else -c in PROMFORK_CMD_ARGS, else a default one in cwd. */
function configFileName(cli: ParsedArgs, envArgs: ParsedArgs, cwd: string): string | null {
  if (cli.config !== undefined) return cli.config;
  if (envArgs.config !== undefined) return envArgs.config;
  return DEFAULT_CONFIG_FILES.find((name) => existsSync(path.join(cwd, name))) ?? null;
}

/** Makes path settings absolute against `cwd` ('-' is stdout/stderr, null is off). */
function absolutize(settings: Settings, cwd: string): void {
  const s = settings as unknown as Record<string, unknown>;
  for (const def of SETTINGS) {
    const v = s[def.key];
    if (def.path && typeof v === 'string' && v !== '-') s[def.key] = path.resolve(cwd, v);
  }
}

/**
 * Resolves `argv` (the arguments after the program name) into a Config. `env` is read for
 * PROMFORK_CMD_ARGS and for env-derived defaults; the defaults are read after the config file has
 * run, so a JS config that sets `process.env.X` takes effect when `env` is `process.env`.
 * With --help or --version nothing else is read and the settings are the built-in defaults.
 */
export async function resolveConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
  opts: { requireApp?: boolean } = {},
): Promise<ResolvedConfig> {
  const cli = parseArgs(argv);
  const rawEnvArgs = env[CMD_ARGS_ENV];
  const envArgs = rawEnvArgs ? parseArgs(shellSplit(rawEnvArgs, CMD_ARGS_ENV), CMD_ARGS_ENV) : parseArgs([]);
  const help = cli.help || envArgs.help;
  const version = cli.version || envArgs.version;
  const checkConfig = cli.checkConfig || envArgs.checkConfig;

  if (help || version) {
    const settings = defaultSettings({});
    absolutize(settings, cwd);
    return { config: { settings, hooks: {}, configFile: null, argv: [...argv] }, checkConfig, help, version };
  }

  const fileName = configFileName(cli, envArgs, cwd);
  let file: LoadedConfigFile | null = null;
  if (fileName !== null) file = await loadConfigFile(fileName, cwd);

  // A file in the Python exporter's layout gives environment defaults: the environment wins over it.
  const layout = file?.pythonLayout ? layoutEnvironment(file.pythonLayout, env) : null;
  const settings: Settings = {
    ...defaultSettings(layout ? underEnvironment(layout.env, env) : env), // after the file ran: it may have set process.env
    ...file?.settings,
    ...envArgs.values,
    ...cli.values,
  };
  settings.app = cli.app ?? envArgs.app ?? file?.settings.app ?? null;
  absolutize(settings, cwd);

  if (settings.app === null && opts.requireApp !== false) {
    throw new PromforkError(
      'PROMFORK_ERR_NO_APP',
      'no app given: pass MODULE[:EXPORT] on the command line (e.g. promfork app.js) or set `app` in the config file',
    );
  }

  return {
    config: { settings, hooks: file?.hooks ?? {}, configFile: file?.path ?? null, argv: [...argv], notices: layout?.notices ?? [] },
    checkConfig,
    help,
    version,
  };
}
