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

const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary']);
const AGGREGATORS = new Set<Aggregator>(['sum', 'first', 'min', 'max', 'average', 'omit']);

/** The snapshot in `text`, checked against the pid and ppid its file (or key) name gives; else what is wrong with it. */
export function parseSnapshot(text: string, pid: number, ppid: number): Snapshot | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (!isRecord(v)) return 'not a snapshot (not a JSON object)';
  if (v.version !== 1) return `unsupported snapshot version ${JSON.stringify(v.version)} (expected 1)`;
  if (v.pid !== pid) return `holds the snapshot of pid ${JSON.stringify(v.pid)}, but its name says pid ${pid}`;
  if (v.ppid !== ppid) return `holds a snapshot of primary ${JSON.stringify(v.ppid)}, but its name says ${ppid}`;
  for (const key of ['seat', 'seq'] as const) {
    if (!Number.isSafeInteger(v[key]) || (v[key] as number) < 0) return `bad ${key} ${JSON.stringify(v[key])}`;
  }
  if (typeof v.takenAt !== 'number' || !Number.isFinite(v.takenAt)) return `bad takenAt ${JSON.stringify(v.takenAt)}`;
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
  if (typeof f.name !== 'string' || f.name === '') return 'bad name';
  const where = `(${f.name})`;
  if (typeof f.help !== 'string') return `bad help ${where}`;
  if (!TYPES.has(f.type as MetricType)) return `bad type ${JSON.stringify(f.type)} ${where}`;
  if (!AGGREGATORS.has(f.aggregator as Aggregator)) return `bad aggregator ${JSON.stringify(f.aggregator)} ${where}`;
  if (!Array.isArray(f.values)) return `bad values ${where}`;
  for (const s of f.values as unknown[]) {
    if (!isRecord(s)) return `a sample is not an object ${where}`;
    if (typeof s.value === 'string' && s.value in DECODE) s.value = DECODE[s.value];
    else if (typeof s.value !== 'number') return `bad sample value ${JSON.stringify(s.value)} ${where}`;
    if (!isRecord(s.labels)) return `bad sample labels ${where}`;
    for (const l of Object.values(s.labels)) {
      if (typeof l !== 'string' && typeof l !== 'number') return `bad label value ${JSON.stringify(l)} ${where}`;
    }
    if (s.metricName !== undefined && typeof s.metricName !== 'string') return `bad sample metricName ${where}`;
  }
  return null;
}

/** The retired fold in `text` (written by `encodeRetired`), checked against the run's ppid; else what is wrong. */
export function parseRetired(text: string, ppid: number): { data: unknown } | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `invalid JSON (${(err as Error).message})`;
  }
  if (!isRecord(v) || !('data' in v)) return 'not a retired fold';
  if (v.version !== 1) return `unsupported retired fold version ${JSON.stringify(v.version)} (expected 1)`;
  if (v.ppid !== ppid) return `holds the fold of primary ${JSON.stringify(v.ppid)}, but its name says ${ppid}`;
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
