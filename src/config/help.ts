// --help and --check-config output, both generated from the settings table.

import type { Settings } from './types.js';
import { CLI_OPTIONS, CMD_ARGS_ENV, SETTINGS, mainFlag, type AnySettingDef } from './settings.js';

function showValue(v: unknown): string {
  if (v === null) return 'none';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

/** The default as --help shows it: env-derived ones as "$A, else $B, else 1". */
export function defaultText(def: AnySettingDef): string {
  if (def.defaultHelp !== undefined) return def.defaultHelp;
  const d = def.default;
  if (typeof d !== 'function') return showValue(d);
  const fallback = showValue((d as (env: NodeJS.ProcessEnv) => unknown)({}));
  return [...(def.envVars ?? []).map((name) => `$${name}`), fallback].join(', else ');
}

function optionLines(flags: string, help: string, extra: string[]): string[] {
  return [`  ${flags}`, `      ${help}`, ...extra.map((line) => `      ${line}`)];
}

export function renderHelp(): string {
  const lines = [
    'Usage: promfork [options] MODULE[:EXPORT]',
    '',
    'Pre-fork HTTP server for Node.js with a built-in Prometheus exporter.',
    'MODULE[:EXPORT] is the app: a module path and its export (default export, then `app`);',
    'config key `app`.',
    '',
    'Subcommands (each has --help):',
    '  promfork exporter [options]   serve the metrics of servers from their store (the sidecar)',
    '  promfork top [options]        a live terminal view of a server, read from its metrics URL',
    '',
    'Options:',
  ];
  const [configOpt, ...otherOpts] = CLI_OPTIONS;
  lines.push(...optionLines(`${configOpt.flags.join(', ')} ${configOpt.metavar}`, configOpt.help, []));
  for (const def of SETTINGS) {
    if (def.flags.length === 0) continue;
    let flags = def.flags.join(', ');
    if (def.type === 'bool') flags += `, --no-${mainFlag(def).slice(2)}`;
    if (def.metavar) flags += ` ${def.metavar}`;
    lines.push(...optionLines(flags, def.help, [`Default: ${defaultText(def)}. Config key: ${def.key}.`]));
  }
  for (const opt of otherOpts) {
    lines.push(...optionLines(`${opt.flags.join(', ')}${opt.metavar ? ` ${opt.metavar}` : ''}`, opt.help, []));
  }
  lines.push(
    '',
    'Environment:',
    `  ${CMD_ARGS_ENV}`,
    '      More options, split like a shell command line; they override the config file,',
    '      and the command line overrides them.',
    '',
    'Precedence, lowest first: defaults, defaults from the environment, the config file,',
    `${CMD_ARGS_ENV}, the command line.`,
  );
  return lines.join('\n') + '\n';
}

/** For --check-config: one `key = value` line per setting, in table order, values as JSON. */
export function renderSettings(settings: Settings): string {
  const s = settings as unknown as Record<string, unknown>;
  return (
    SETTINGS.map((def) => {
      const value = def.secret && s[def.key] != null ? '"********"' : JSON.stringify(s[def.key]);
      return `${def.key} = ${value ?? 'undefined'}`;
    }).join('\n') + '\n'
  );
}
