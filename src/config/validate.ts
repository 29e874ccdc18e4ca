// Per-type conversion and validation of setting values, shared by the command line, the environment
// and config files so that each source accepts and rejects exactly the same things.

import { PromforkError } from '../errors.js';

export type SettingType = 'int' | 'number' | 'string' | 'bool' | 'list' | 'enum';

export interface ValueSpec {
  type: SettingType;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A config file may set it to null (the "off" value). */
  nullable?: boolean;
  /** Extra check of a string (or of each item of a list): what is wrong, or undefined. */
  check?: (value: string) => string | undefined;
  /** What one value looks like, replacing the text generated from the type. */
  expects?: string;
  /** A secret (password, token): never shown, in errors either. */
  secret?: boolean;
}

export type Checked = { ok: true; value: unknown } | { ok: false; reason?: string };

const INT = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function range(spec: ValueSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` between ${spec.min} and ${spec.max}`;
  if (spec.min !== undefined) return ` >= ${spec.min}`;
  if (spec.max !== undefined) return ` <= ${spec.max}`;
  return '';
}

/** "an integer >= 1", "one of debug, info, ...": what a value must be. `inFile` adds the forms only a file can use. */
export function expectation(spec: ValueSpec, inFile = false): string {
  let text: string;
  switch (spec.type) {
    case 'int': text = 'an integer' + range(spec); break;
    case 'number': text = 'a number' + range(spec); break;
    case 'bool': text = 'true or false'; break;
    case 'enum': text = 'one of ' + (spec.choices ?? []).join(', '); break;
    case 'string':
    case 'list': text = 'a non-empty string'; break;
  }
  if (spec.expects) text = spec.expects;
  if (inFile && spec.type === 'list') text += ', or a list of them';
  if (inFile && spec.nullable) text += ', or null';
  return text;
}

function inRange(spec: ValueSpec, n: number): Checked {
  if (spec.min !== undefined && n < spec.min) return { ok: false };
  if (spec.max !== undefined && n > spec.max) return { ok: false };
  return { ok: true, value: n };
}

function checkString(spec: ValueSpec, s: string): Checked {
  if (s === '') return { ok: false };
  const reason = spec.check?.(s);
  return reason === undefined ? { ok: true, value: s } : { ok: false, reason };
}

/**
 * Converts a string from the command line or the environment. For a `list` setting this is
 * one item (the caller collects repeated options).
 */
export function fromString(spec: ValueSpec, raw: string): Checked {
  switch (spec.type) {
    case 'int': {
      if (!INT.test(raw)) return { ok: false };
      const n = Number(raw);
      return Number.isSafeInteger(n) ? inRange(spec, n) : { ok: false };
    }
    case 'number':
      return NUMBER.test(raw) && Number.isFinite(Number(raw)) ? inRange(spec, Number(raw)) : { ok: false };
    case 'bool':
      if (/^(true|1)$/i.test(raw)) return { ok: true, value: true };
      if (/^(false|0)$/i.test(raw)) return { ok: true, value: false };
      return { ok: false };
    case 'enum': {
      // Case-insensitive like Gunicorn's --log-level; the stored value is the canonical spelling.
      const found = (spec.choices ?? []).find((c) => c.toLowerCase() === raw.toLowerCase());
      return found === undefined ? { ok: false } : { ok: true, value: found };
    }
    case 'string':
    case 'list':
      return checkString(spec, raw);
  }
}

/** Validates a typed value from a config file: numbers must be numbers, booleans booleans. */
export function fromValue(spec: ValueSpec, v: unknown): Checked {
  if (v === null) return spec.nullable ? { ok: true, value: null } : { ok: false };
  switch (spec.type) {
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) ? inRange(spec, v) : { ok: false };
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? inRange(spec, v) : { ok: false };
    case 'bool':
      return typeof v === 'boolean' ? { ok: true, value: v } : { ok: false };
    case 'enum':
    case 'string':
      return typeof v === 'string' ? fromString(spec, v) : { ok: false };
    case 'list': {
      if (typeof v === 'string') {
        const one = checkString(spec, v);
        return one.ok ? { ok: true, value: [v] } : one;
      }
      if (!Array.isArray(v) || v.length === 0) return { ok: false };
      for (const item of v) {
        if (typeof item !== 'string') return { ok: false };
        const one = checkString(spec, item);
        if (!one.ok) return { ok: false, reason: one.reason && `${JSON.stringify(item)}: ${one.reason}` };
      }
      return { ok: true, value: [...v] };
    }
  }
}

/** A short, one-line rendering of a bad value for an error message. */
export function describe(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (v === undefined || typeof v !== 'object' || v === null) {
    return typeof v === 'string' ? JSON.stringify(v) : String(v);
  }
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** `${subject} expects ${what}, got ${value}`: the one error for a value of the wrong type or range. */
export function invalidValue(subject: string, spec: ValueSpec, got: unknown, reason?: string, inFile = false): PromforkError {
  const why = reason ? ` (${reason})` : '';
  const shown = spec.secret ? 'a value that is not shown (a secret)' : describe(got);
  return new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${subject} expects ${expectation(spec, inFile)}, got ${shown}${why}`);
}

/**
 * Reads and validates one environment variable; unset or empty means "not given".
 * The error names the variable, since that is what the user has to fix.
 */
export function envValue<T>(env: NodeJS.ProcessEnv, name: string, spec: ValueSpec): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const r = fromString(spec, raw);
  if (!r.ok) throw invalidValue(`environment variable ${name}`, spec, raw, r.reason);
  return r.value as T;
}
