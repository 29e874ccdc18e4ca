// A small table-driven command-line parser (Node 20's util.parseArgs has no `--no-x`).
// Accepts `--opt=value`, `--opt value`, `-w 4`, `-w4`, `--metrics`/`--no-metrics`, repeated `--bind`,
// one positional app, and `--` to end the options. Values are converted and validated right here.

import { PromforkError } from '../errors.js';
import type { Settings } from './types.js';
import { CLI_OPTIONS, SETTINGS, mainFlag, type AnySettingDef, type CliOptionDef } from './settings.js';
import { closest } from './suggest.js';
import { fromString, invalidValue } from './validate.js';

export interface ParsedArgs {
  values: Partial<Settings>;
  config?: string;
  checkConfig: boolean;
  help: boolean;
  version: boolean;
  app?: string;
}

type Target =
  | { kind: 'setting'; def: AnySettingDef; negated: boolean }
  | { kind: 'cli'; opt: CliOptionDef };

const TARGETS = new Map<string, Target>();
// Names compared for "did you mean": long flags and setting keys (so `--pidfile` finds `--pid`).
const SUGGESTIONS = new Map<string, string>();

for (const def of SETTINGS) {
  for (const flag of def.flags) TARGETS.set(flag, { kind: 'setting', def, negated: false });
  if (def.type === 'bool') TARGETS.set(`--no-${mainFlag(def).slice(2)}`, { kind: 'setting', def, negated: true });
}
for (const opt of CLI_OPTIONS) for (const flag of opt.flags) TARGETS.set(flag, { kind: 'cli', opt });
for (const flag of TARGETS.keys()) if (flag.startsWith('--')) SUGGESTIONS.set(flag.slice(2), flag);
for (const def of SETTINGS) if (def.flags.length > 0 && !SUGGESTIONS.has(def.key)) SUGGESTIONS.set(def.key, mainFlag(def));

function takesValue(t: Target): boolean {
  return t.kind === 'setting' ? t.def.type !== 'bool' : t.opt.metavar !== '';
}

/** The next argument is the option's value unless it looks like another option. */
function looksLikeValue(arg: string | undefined): arg is string {
  return arg !== undefined && (!arg.startsWith('-') || arg === '-' || /^-\.?\d/.test(arg));
}

/**
 * Parses command-line arguments. `source` names where they came from (e.g. 'PROMFORK_CMD_ARGS'),
 * and every error message says so.
 */
export function parseArgs(argv: readonly string[], source?: string): ParsedArgs {
  const out: ParsedArgs = { values: {}, checkConfig: false, help: false, version: false };
  const values = out.values as Record<string, unknown>;
  const where = source ? ` in ${source}` : '';
  let optionsEnded = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!optionsEnded && arg === '--') {
      optionsEnded = true;
      continue;
    }
    if (optionsEnded || arg === '-' || !arg.startsWith('-')) {
      if (out.app !== undefined) {
        throw new PromforkError(
          'PROMFORK_ERR_EXTRA_ARGUMENT',
          `unexpected argument ${JSON.stringify(arg)}${where}: the app is already ${JSON.stringify(out.app)}; give one MODULE[:EXPORT]`,
        );
      }
      if (arg === '') throw invalidValue(`MODULE[:EXPORT]${where}`, { type: 'string' }, arg);
      out.app = arg;
      continue;
    }

    // Split `--opt=value` and `-w4` / `-w=4` into the flag and its inline value.
    let flag: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      flag = eq < 0 ? arg : arg.slice(0, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      flag = arg.slice(0, 2);
      inline = arg.length > 2 ? arg.slice(arg[2] === '=' ? 3 : 2) : undefined;
    }

    const target = TARGETS.get(flag);
    if (!target) {
      const hint = flag.startsWith('--') ? closest(flag.slice(2), SUGGESTIONS) : undefined;
      const fix = hint ? `did you mean ${hint}?` : 'see promfork --help for the options';
      throw new PromforkError('PROMFORK_ERR_UNKNOWN_OPTION', `unknown option ${flag}${where}; ${fix}`);
    }

    if (!takesValue(target)) {
      if (inline !== undefined) {
        const fix = target.kind === 'setting' ? `use ${mainFlag(target.def)} or --no-${mainFlag(target.def).slice(2)}` : `use ${flag} alone`;
        throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${flag}${where} takes no value, got ${JSON.stringify(inline)}; ${fix}`);
      }
      if (target.kind === 'setting') values[target.def.key] = !target.negated;
      else if (target.opt.name !== 'config') out[target.opt.name] = true;
      continue;
    }

    let raw = inline;
    if (raw === undefined && looksLikeValue(argv[i + 1])) raw = argv[++i];
    const metavar = target.kind === 'setting' ? target.def.metavar : target.opt.metavar;
    if (raw === undefined) {
      throw new PromforkError('PROMFORK_ERR_MISSING_VALUE', `${flag}${where} needs a value: ${flag} ${metavar}`);
    }

    if (target.kind === 'cli') {
      if (raw === '') throw invalidValue(`${flag}${where}`, { type: 'string' }, raw);
      out.config = raw;
      continue;
    }
    const def = target.def;
    const r = fromString(def, raw);
    if (!r.ok) {
      const name = flag === mainFlag(def) ? flag : `${flag} (${mainFlag(def)})`;
      throw invalidValue(`${name}${where}`, def, raw, r.reason);
    }
    if (def.type === 'list') values[def.key] = [...((values[def.key] as string[] | undefined) ?? []), r.value];
    else values[def.key] = r.value;
  }
  return out;
}
