// Merging of metric families from several processes (the collector's core, DESIGN.md section 4).
//
// Input and output are prom-client's `getMetricsAsJSON()` shape (src/store/snapshot.ts). Everything here is
// pure and runs on every scrape over up to 32 workers x 1,000 series, so the inner loops allocate nothing per
// input sample beyond one key string (a second one for histogram samples); one output object is created per
// output series.
//
// Merge rules, per (family name, sample name, label set):
// - counters, histogram samples (`_bucket`, `_sum`, `_count`) and summary `_sum`/`_count` are SUMMED;
// - summary quantile samples are DROPPED: a quantile of the union of several processes' observations cannot be
//   computed from the processes' own quantiles (the median of medians is not the median), so any value we
//   exposed would be wrong (docs/design.md, pitfall 18). The merged summary keeps `_sum` and `_count`, which is still a valid
//   summary in both exposition formats;
// - gauges are combined by the family's `aggregator` (sum, min, max, average, first); `omit` means the family
//   is not exposed at all (for any type);
// - a label set's identity does not depend on the order of its labels; the output keeps the label order of the
//   first sample seen (which is what makes our text byte-identical to prom-client's for one registry).
//
// Monotonicity (docs/design.md, L1): counters and histograms are monotonic in the merge only because every counter value
// of a process is in exactly one part. The caller guarantees that: a dead worker's final snapshot is folded
// into `RetiredTotals` (and the fold persisted) BEFORE the worker's own snapshot is dropped from the live
// parts, so its counts move from one part to the other in one step and are never missing nor counted twice.

import type { Aggregator, MetricFamily, MetricType, Sample } from '../store/snapshot.js';
import { LABEL_NAME, METRIC_NAME } from '../store/codec.js';

/** Options of `mergeFamilies`. */
export interface MergeOptions {
  /** Aggregator for gauge families that declare none (or an unknown one). Default `sum`, as prom-client. */
  defaultAggregator?: Aggregator;
}

export interface MergeResult {
  /** Sorted by name; each name appears once (docs/design.md, L6). */
  families: MetricFamily[];
  /** One message per family name that was seen with two different types. */
  conflicts: string[];
}

type Labels = Sample['labels'];

const AGGREGATORS: ReadonlySet<string> = new Set(['sum', 'first', 'min', 'max', 'average', 'omit']);
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary']);

// How one series combines with the next value of the same series.
const OP_SUM = 0;
const OP_MIN = 1;
const OP_MAX = 2;
const OP_FIRST = 3;
const OP_AVERAGE = 4;

// Histogram sample kinds, in exposition order within one label set.
const KIND_BUCKET = 0;
const KIND_SUM = 1;
const KIND_COUNT = 2;
const KIND_OTHER = 3;

/**
 * The identity of a label set, independent of label order, relative to a family's reference label names (the
 * names of the first sample the family saw, `le` excluded): when the set has exactly the reference names, its
 * key is its values in reference order, each as `<length>:<value>`; otherwise it is `\u0001` then
 * `name=<length>:<value>;` for each label in ascending name order. Values are length-prefixed and the two forms
 * cannot meet (the first starts with a digit or is empty), so two different label sets never share a key.
 * Numbers and their decimal string are the same value (they print the same).
 *
 * Fast path (the usual case: every sample of a family has its labels in the same order): one for-in pass, no
 * sort, no array, compared name by name against the reference (internalised strings: pointer compares).
 */
function labelKey(labels: Labels, skip: string | undefined, ref: readonly string[]): string {
  let key = '';
  let j = 0;
  for (const name in labels) {
    if (name === skip) continue;
    if (name !== ref[j]) return slowLabelKey(labels, skip, ref);
    j++;
    const raw = labels[name];
    const value = typeof raw === 'string' ? raw : String(raw);
    key += value.length + ':' + value;
  }
  return j === ref.length ? key : slowLabelKey(labels, skip, ref);
}

function slowLabelKey(labels: Labels, skip: string | undefined, ref: readonly string[]): string {
  let n = 0;
  for (const name in labels) if (name !== skip) n++;
  let same = n === ref.length;
  for (let j = 0; same && j < ref.length; j++) same = Object.prototype.hasOwnProperty.call(labels, ref[j]);
  let key = '';
  if (same) {
    for (const name of ref) {
      const raw = labels[name];
      const value = typeof raw === 'string' ? raw : String(raw);
      key += value.length + ':' + value;
    }
    return key;
  }
  key = '\u0001';
  for (const name of Object.keys(labels).sort()) {
    if (name === skip) continue;
    const raw = labels[name];
    const value = typeof raw === 'string' ? raw : String(raw);
    key += name + '=' + value.length + ':' + value + ';';
  }
  return key;
}

/** The label names of a sample, `skip` excluded, in their order: a family's reference for `labelKey`. */
function labelNames(labels: Labels, skip: string | undefined): string[] {
  const names: string[] = [];
  for (const name in labels) if (name !== skip) names.push(name);
  return names;
}

/** `le` as a number (`+Inf` -> Infinity); NaN when it is not a number. */
function parseLe(raw: string | number | undefined): number {
  if (typeof raw === 'number') return raw;
  if (raw === undefined) return NaN;
  if (raw === '+Inf' || raw === 'Inf' || raw === 'inf' || raw === '+inf') return Infinity;
  if (raw === '-Inf' || raw === '-inf') return -Infinity;
  return raw === '' ? NaN : Number(raw);
}

/** JSON turns NaN and infinities into `null`: read anything that is not a number as NaN (never as 0). */
function num(value: unknown): number {
  return typeof value === 'number' ? value : NaN;
}

function newSample(value: number, labels: Labels, metricName: string | undefined): Sample {
  return metricName === undefined ? { value, labels } : { value, labels, metricName };
}

function copyLabels(labels: Labels): Labels {
  const copy: Labels = {};
  for (const name in labels) copy[name] = labels[name];
  return copy;
}

/** The accumulator of one family: output samples in first-seen order, indexed by series key. */
class FamilyAcc {
  readonly out: Sample[] = [];
  readonly index = new Map<string, number>();
  /** OP_AVERAGE only: how many values each output sample summed. */
  readonly counts: number[] = [];
  /** Histograms only: per output sample, its label-set group (first-seen numbering), kind and `le`. */
  readonly groups = new Map<string, number>();
  readonly groupOf: number[] = [];
  readonly kindOf: number[] = [];
  readonly leOf: number[] = [];
  private readonly bucketName: string;
  private readonly sumName: string;
  private readonly countName: string;
  /** Reference label names for `labelKey`, set by the first sample. */
  private ref: string[] | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly aggregator: Aggregator,
    private readonly op: number,
    /** Copy label objects of new series (for long-lived accumulators); else share the input's. */
    private readonly copy: boolean,
  ) {
    this.bucketName = name + '_bucket';
    this.sumName = name + '_sum';
    this.countName = name + '_count';
  }

  addAll(values: readonly Sample[]): void {
    switch (this.type) {
      case 'histogram':
        for (let i = 0; i < values.length; i++) this.addHistogram(values[i]);
        return;
      case 'summary':
        for (let i = 0; i < values.length; i++) {
          const s = values[i];
          // Only `_sum` and `_count` are kept: quantile samples (which carry the family's own name, or none) are
          // dropped, see the header comment.
          if (s.metricName === this.sumName || s.metricName === this.countName) {
            this.addPlain(s, s.metricName + '|' + this.key(s.labels, undefined));
          }
        }
        return;
      default:
        for (let i = 0; i < values.length; i++) {
          const s = values[i];
          const mn = s.metricName;
          this.addPlain(s, mn === undefined || mn === this.name ? this.key(s.labels, undefined) : mn + '|' + this.key(s.labels, undefined));
        }
    }
  }

  private key(labels: Labels, skip: string | undefined): string {
    if (this.ref === undefined) this.ref = labelNames(labels, skip);
    return labelKey(labels, skip, this.ref);
  }

  private addPlain(s: Sample, key: string): void {
    const value = num(s.value);
    const at = this.index.get(key);
    if (at === undefined) {
      this.index.set(key, this.out.length);
      this.out.push(newSample(value, this.copy ? copyLabels(s.labels) : s.labels, s.metricName));
      if (this.op === OP_AVERAGE) this.counts.push(1);
      return;
    }
    const target = this.out[at];
    switch (this.op) {
      case OP_SUM:
        target.value += value;
        break;
      case OP_MIN:
        if (value < target.value || target.value !== target.value) target.value = value;
        break;
      case OP_MAX:
        if (value > target.value || target.value !== target.value) target.value = value;
        break;
      case OP_AVERAGE:
        target.value += value;
        this.counts[at]++;
        break;
      default: // OP_FIRST: the first part that has the series wins
    }
  }

  private addHistogram(s: Sample): void {
    const mn = s.metricName;
    let kind: number;
    let le = NaN;
    if (mn === this.bucketName && s.labels.le !== undefined) {
      kind = KIND_BUCKET;
    } else if (mn === this.sumName) {
      kind = KIND_SUM;
    } else if (mn === this.countName) {
      kind = KIND_COUNT;
    } else {
      kind = KIND_OTHER;
    }
    const group = this.key(s.labels, kind === KIND_BUCKET ? 'le' : undefined);
    let key: string;
    if (kind === KIND_BUCKET) {
      const raw = s.labels.le;
      le = parseLe(raw);
      // `le` 1, "1" and "1.0" are one bucket; an unparsable `le` keeps its raw text as identity.
      key = '\u0002b' + group + (le === le ? String(le) : 'raw:' + String(raw));
    } else {
      // Metric names cannot contain \u0002 or `|`: the kinds' keys never meet each other nor other samples'.
      key = (kind === KIND_SUM ? '\u0002s' : kind === KIND_COUNT ? '\u0002c' : (mn ?? '') + '|') + group;
    }
    const at = this.index.get(key);
    if (at !== undefined) {
      this.out[at].value += num(s.value);
      return;
    }
    let g = this.groups.get(group);
    if (g === undefined) {
      g = this.groups.size;
      this.groups.set(group, g);
    }
    this.index.set(key, this.out.length);
    this.out.push(newSample(num(s.value), this.copy ? copyLabels(s.labels) : s.labels, mn));
    this.groupOf.push(g);
    this.kindOf.push(kind);
    this.leOf.push(le);
  }

  /** The family, samples in exposition-valid order. */
  toFamily(): MetricFamily {
    let values = this.out;
    if (this.op === OP_AVERAGE) {
      const counts = this.counts;
      values = values.map((s, i) => (counts[i] === 1 ? s : newSample(s.value / counts[i], s.labels, s.metricName)));
    } else if (this.type === 'histogram' && !this.histogramOrdered()) {
      values = this.histogramSorted();
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /**
   * True when the first-seen order is already valid: each label set contiguous, its buckets in ascending `le`
   * (so `+Inf` last), then `_sum`, then `_count`. This is the usual case (all parts have the same buckets), and
   * checking is cheaper than sorting.
   */
  private histogramOrdered(): boolean {
    const { groupOf, kindOf, leOf } = this;
    let group = -1;
    let kind = 0;
    let le = -Infinity;
    for (let i = 0; i < groupOf.length; i++) {
      if (groupOf[i] !== group) {
        // Groups are numbered in first-seen order: a group that comes back after another one is out of place.
        if (groupOf[i] !== group + 1) return false;
        group = groupOf[i];
        kind = kindOf[i];
        le = leOf[i];
        continue;
      }
      if (kindOf[i] < kind) return false;
      if (kindOf[i] === KIND_BUCKET && kind === KIND_BUCKET && !(leOf[i] > le)) return false;
      kind = kindOf[i];
      le = leOf[i];
    }
    return true;
  }

  private histogramSorted(): Sample[] {
    const { groupOf, kindOf, leOf } = this;
    const order = this.out.map((_, i) => i);
    order.sort((a, b) => {
      const d = groupOf[a] - groupOf[b] || kindOf[a] - kindOf[b];
      if (d !== 0) return d;
      if (kindOf[a] === KIND_BUCKET) {
        const la = leOf[a];
        const lb = leOf[b];
        if (la < lb) return -1;
        if (la > lb) return 1;
      }
      return a - b;
    });
    return order.map((i) => this.out[i]);
  }
}

function opOf(type: MetricType, aggregator: Aggregator): number {
  if (type !== 'gauge') return OP_SUM;
  switch (aggregator) {
    case 'min':
      return OP_MIN;
    case 'max':
      return OP_MAX;
    case 'first':
      return OP_FIRST;
    case 'average':
      return OP_AVERAGE;
    default:
      return OP_SUM;
  }
}

function aggregatorOf(family: MetricFamily, fallback: Aggregator): Aggregator {
  const a = family.aggregator as string | undefined;
  return a !== undefined && AGGREGATORS.has(a) ? (a as Aggregator) : fallback;
}

/**
 * Merges the families of several parts (the retired totals, then each live worker's snapshot) into one list.
 * See the header comment for the rules. A family name seen with two different types keeps the type of the first
 * part that has it; the other parts' samples for it are skipped and reported once in `conflicts`.
 */
export function mergeFamilies(parts: readonly (readonly MetricFamily[])[], opts: MergeOptions = {}): MergeResult {
  const fallback = opts.defaultAggregator ?? 'sum';
  const accs = new Map<string, FamilyAcc>();
  const conflicts = new Map<string, string>();
  for (const part of parts) {
    for (const family of part) {
      let acc = accs.get(family.name);
      if (acc === undefined) {
        if (!TYPES.has(family.type)) {
          if (!conflicts.has(family.name)) {
            conflicts.set(family.name, `metric family ${family.name}: unknown type ${String(family.type)}, skipped`);
          }
          continue;
        }
        const aggregator = aggregatorOf(family, fallback);
        acc = new FamilyAcc(family.name, family.help, family.type, aggregator, opOf(family.type, aggregator), false);
        accs.set(family.name, acc);
      } else if (acc.type !== family.type) {
        if (!conflicts.has(family.name)) {
          conflicts.set(
            family.name,
            `metric family ${family.name}: type ${String(family.type)} conflicts with ${acc.type} (seen first); its samples are skipped`,
          );
        }
        continue;
      }
      acc.addAll(family.values);
    }
  }
  const names = [...accs.keys()].sort();
  const families: MetricFamily[] = [];
  for (const name of names) {
    const acc = accs.get(name) as FamilyAcc;
    if (acc.aggregator === 'omit') continue;
    families.push(acc.toFamily());
  }
  return { families, conflicts: [...conflicts.values()] };
}

/** The persisted form of `RetiredTotals`. */
export interface RetiredTotalsJSON {
  version: 1;
  families: MetricFamily[];
}

/**
 * The fold of dead workers (docs/design.md, L1): the sum of the counters, histograms and summary `_sum`/`_count` of every
 * retired worker's final snapshot. Gauges are not folded: a dead worker's gauges disappear (docs/design.md, L2).
 * Quantiles are not folded either (they cannot be merged). A family seen later with another type than the one
 * first folded is skipped (`mergeFamilies` reports the conflict when live workers still expose it).
 *
 * Its families go into `mergeFamilies` as one more part. The caller persists `toJSON()` (atomically) before it
 * drops the dead worker's snapshot, so a crash of the primary in between can neither lose nor double the counts.
 */
export class RetiredTotals {
  readonly #accs = new Map<string, FamilyAcc>();

  /** Adds a dead worker's final families into the totals. */
  fold(families: readonly MetricFamily[]): void {
    for (const family of families) {
      if (family.type === 'gauge' || !TYPES.has(family.type)) continue;
      let acc = this.#accs.get(family.name);
      if (acc === undefined) {
        acc = new FamilyAcc(family.name, family.help, family.type, aggregatorOf(family, 'sum'), OP_SUM, true);
        this.#accs.set(family.name, acc);
      } else if (acc.type !== family.type) {
        continue;
      }
      acc.addAll(family.values);
    }
  }

  /** The accumulated families, sorted by name, samples in exposition-valid order. */
  families(): MetricFamily[] {
    return [...this.#accs.keys()].sort().map((name) => (this.#accs.get(name) as FamilyAcc).toFamily());
  }

  /** Number of accumulated series (sample lines). */
  get size(): number {
    let n = 0;
    for (const acc of this.#accs.values()) n += acc.out.length;
    return n;
  }

  toJSON(): RetiredTotalsJSON {
    return { version: 1, families: this.families() };
  }

  /**
   * Restores totals written by `toJSON()` (after `JSON.parse`). Throws a TypeError naming the problem when the
   * data does not have that shape.
   */
  static fromJSON(data: unknown): RetiredTotals {
    if (typeof data !== 'object' || data === null) invalid('not an object');
    const { version, families } = data as { version?: unknown; families?: unknown };
    if (version !== 1) invalid(`unsupported version ${String(version)}`);
    if (!Array.isArray(families)) invalid('families is not an array');
    for (const f of families as unknown[]) checkFamily(f);
    const totals = new RetiredTotals();
    totals.fold(families as MetricFamily[]);
    return totals;
  }
}

/** A value read from a store, for a message: escaped and cut short. */
function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

function invalid(what: string): never {
  throw new TypeError(`invalid retired totals: ${what}`);
}

function checkFamily(f: unknown): void {
  if (typeof f !== 'object' || f === null) invalid('a family is not an object');
  const { name, help, type, values } = f as Record<string, unknown>;
  // Names are checked as a snapshot's are: a name outside Prometheus' grammar would print lines of its own.
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) invalid(`bad metric name ${shown(name)}`);
  if (typeof help !== 'string') invalid(`family ${name} has no help`);
  if (!TYPES.has(String(type))) invalid(`family ${name} has type ${String(type)}`);
  if (!Array.isArray(values)) invalid(`family ${name} has no values`);
  for (const s of values as unknown[]) {
    if (typeof s !== 'object' || s === null) invalid(`family ${name} has a sample that is not an object`);
    const { labels, value, metricName } = s as Record<string, unknown>;
    if (typeof labels !== 'object' || labels === null) invalid(`family ${name} has a sample without labels`);
    // A NaN or infinite value was written as null by JSON.stringify.
    if (typeof value !== 'number' && value !== null) invalid(`family ${name} has a sample whose value is not a number`);
    for (const l of Object.keys(labels as object)) if (!LABEL_NAME.test(l)) invalid(`bad label name ${shown(l)} (${name})`);
    if (metricName !== undefined && (typeof metricName !== 'string' || !METRIC_NAME.test(metricName))) {
      invalid(`bad sample name ${shown(metricName)} (${name})`);
    }
  }
}

/**
 * Counters and histograms never go back while one reader serves one run (docs/design.md, L1). Float sums can come
 * out a few ulps lower when a dead worker's values move into the retired totals (the additions happen in another
 * order), and a store that lost writes (a Redis failover with asynchronous replication) can hand back older values
 * for a while: a counter or histogram sample is never exposed below the value exposed before. A drop beyond float
 * noise is reported to `onDrop` (logged and counted by the caller); tests assert there is none where the store
 * kept everything.
 */
export class MonotonicHold {
  private readonly exposed = new Map<string, number>();

  constructor(private readonly onDrop: (series: string, before: number, now: number) => void) {}

  /** Raise every counter and histogram sample of `families` (in place) to at least its last exposed value. */
  apply(families: MetricFamily[]): void {
    for (const f of families) {
      if (f.type === 'gauge') continue;
      for (const sample of f.values) {
        if (f.type === 'summary' && sample.labels.quantile !== undefined) continue;
        let key = sample.metricName ?? f.name;
        for (const k in sample.labels) key += `\u0000${k}=${sample.labels[k]}`;
        const before = this.exposed.get(key);
        if (before !== undefined && sample.value < before) {
          if (before - sample.value > 1e-9 * Math.max(1, Math.abs(before))) this.onDrop(key.split('\u0000').join(' '), before, sample.value);
          sample.value = before;
        } else this.exposed.set(key, sample.value);
      }
    }
  }
}
