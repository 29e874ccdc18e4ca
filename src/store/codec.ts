// The text form of what the stores persist, shared by the directory store and the Redis store: a worker's snapshot
// as JSON, and a run's retired fold wrapped in a small envelope. JSON cannot hold NaN or ±Infinity, so a snapshot's
// non-finite sample values are written as the strings "NaN", "+Inf" and "-Inf" (Prometheus' spellings), non-finite
// numbers anywhere in a retired fold as `{"$number":"+Inf"}`, and both are read back as numbers.

import type { Aggregator, MetricType, Snapshot } from './snapshot.js';

// ---- writing ----

type EncodedValue = number | 'NaN' | '+Inf' | '-Inf';

export function encodeNumber(v: number): EncodedValue {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

const DECODE: Record<string, number> = { NaN: Number.NaN, '+Inf': Number.POSITIVE_INFINITY, '-Inf': Number.NEGATIVE_INFINITY };

/** The snapshot itself when all its values are finite (the usual case: no copy), else a copy with them encoded. */
export function encodeSnapshot(s: Snapshot): unknown {
  const finite = s.metrics.every((f) => f.values.every((v) => Number.isFinite(v.value)));
  if (finite) return s;
  return {
    ...s,
    metrics: s.metrics.map((f) => ({ ...f, values: f.values.map((v) => ({ ...v, value: encodeNumber(v.value) })) })),
  };
}

/** `{"version":1,"ppid":N,"nonFinite":B,"data":...}`; non-finite numbers in data become `{"$number":"+Inf"}`. */
export function encodeRetired(data: unknown, ppid: number): string {
  let nonFinite = false;
  const dataText = JSON.stringify(data, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      nonFinite = true;
      return { $number: encodeNumber(value) };
    }
    return value;
  }) as string | undefined;
  if (dataText === undefined) throw new TypeError('cannot write the retired fold: the data is not JSON-serialisable');
  return `{"version":1,"ppid":${ppid},"nonFinite":${nonFinite},"data":${dataText}}`;
}

// ---- reading ----
//
// What is read back is not trusted: another user may write to a shared Redis or to a store directory that is not
// private. Names must follow Prometheus' grammar (a name with a newline would print its own line on /metrics), a
// snapshot's seq is bounded (a huge one would make every later real snapshot of that worker look stale), and a
// value larger than any real snapshot is refused before it is parsed (parsing blocks the reading process).

/** The largest snapshot or retired fold read back, in UTF-16 code units of its JSON text (about bytes). */
export const MAX_STORED_TEXT = 8 * 1024 * 1024;
/** The largest seq read back: 2^40, a snapshot every millisecond for 34 years. */
export const MAX_SEQ = 2 ** 40;

/** Prometheus' grammar for metric and label names: what is read from a store must match it. */
export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A name for a message: at most 60 characters, JSON-quoted (no control character reaches a log line). */
function shown(v: unknown): string {
  const text = JSON.stringify(typeof v === 'string' && v.length > 60 ? `${v.slice(0, 57)}...` : v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** JSON.parse, with a message that never quotes the text (it may be a file a planted link points to). */
function parseJson(text: string): { value: unknown } | string {
  if (text.length > MAX_STORED_TEXT) return `too large (${text.length} characters, at most ${MAX_STORED_TEXT})`;
  try {
    return { value: JSON.parse(text) };
  } catch {
    return `invalid JSON (${text.length} characters)`;
  }
}

const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary']);
const AGGREGATORS = new Set<Aggregator>(['sum', 'first', 'min', 'max', 'average', 'omit']);

/** The snapshot in `text`, checked against the pid and ppid its file (or key) name gives; else what is wrong with it. */
export function parseSnapshot(text: string, pid: number, ppid: number): Snapshot | string {
  const parsed = parseJson(text);
  if (typeof parsed === 'string') return parsed;
  const v = parsed.value;
  if (!isRecord(v)) return 'not a snapshot (not a JSON object)';
  if (v.version !== 1) return `unsupported snapshot version ${shown(v.version)} (expected 1)`;
  if (v.pid !== pid) return `holds the snapshot of pid ${shown(v.pid)}, but its name says pid ${pid}`;
  if (v.ppid !== ppid) return `holds a snapshot of primary ${shown(v.ppid)}, but its name says ${ppid}`;
  for (const key of ['seat', 'seq'] as const) {
    if (!Number.isSafeInteger(v[key]) || (v[key] as number) < 0) return `bad ${key} ${shown(v[key])}`;
  }
  if ((v.seq as number) > MAX_SEQ) return `bad seq ${v.seq as number} (at most ${MAX_SEQ})`;
  if (typeof v.takenAt !== 'number' || !Number.isFinite(v.takenAt)) return `bad takenAt ${shown(v.takenAt)}`;
  if (!Array.isArray(v.metrics)) return 'bad metrics (not an array)';
  for (let i = 0; i < v.metrics.length; i++) {
    const problem = checkFamily(v.metrics[i]);
    if (problem !== null) return `metric family #${i}: ${problem}`;
  }
  return v as unknown as Snapshot;
}

/** Checks a family in place, decoding its non-finite values; null when it is valid. */
function checkFamily(f: unknown): string | null {
  if (!isRecord(f)) return 'not an object';
  if (typeof f.name !== 'string' || !METRIC_NAME.test(f.name)) return `bad metric name ${shown(f.name)}`;
  const where = `(${f.name})`;
  if (typeof f.help !== 'string') return `bad help ${where}`;
  if (!TYPES.has(f.type as MetricType)) return `bad type ${shown(f.type)} ${where}`;
  if (!AGGREGATORS.has(f.aggregator as Aggregator)) return `bad aggregator ${shown(f.aggregator)} ${where}`;
  if (!Array.isArray(f.values)) return `bad values ${where}`;
  for (const s of f.values as unknown[]) {
    if (!isRecord(s)) return `a sample is not an object ${where}`;
    if (typeof s.value === 'string' && s.value in DECODE) s.value = DECODE[s.value];
    else if (typeof s.value !== 'number') return `bad sample value ${shown(s.value)} ${where}`;
    if (!isRecord(s.labels)) return `bad sample labels ${where}`;
    for (const [name, l] of Object.entries(s.labels)) {
      if (!LABEL_NAME.test(name)) return `bad label name ${shown(name)} ${where}`;
      if (typeof l !== 'string' && typeof l !== 'number') return `bad label value ${shown(l)} ${where}`;
    }
    if (s.metricName !== undefined && (typeof s.metricName !== 'string' || !METRIC_NAME.test(s.metricName))) {
      return `bad sample name ${shown(s.metricName)} ${where}`;
    }
  }
  return null;
}

/** The retired fold in `text` (written by `encodeRetired`), checked against the run's ppid; else what is wrong. */
export function parseRetired(text: string, ppid: number): { data: unknown } | string {
  const parsed = parseJson(text);
  if (typeof parsed === 'string') return parsed;
  const v = parsed.value;
  if (!isRecord(v) || !('data' in v)) return 'not a retired fold';
  if (v.version !== 1) return `unsupported retired fold version ${shown(v.version)} (expected 1)`;
  if (v.ppid !== ppid) return `holds the fold of primary ${shown(v.ppid)}, but its name says ${ppid}`;
  return { data: v.nonFinite === true ? decodeNumbers(v.data) : v.data };
}

function decodeNumbers(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeNumbers);
  if (!isRecord(v)) return v;
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === '$number' && typeof v.$number === 'string' && v.$number in DECODE) {
    return DECODE[v.$number];
  }
  for (const k of keys) v[k] = decodeNumbers(v[k]);
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
