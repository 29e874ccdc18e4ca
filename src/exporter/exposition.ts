// Text exposition of merged families: Prometheus text format 0.0.4 and OpenMetrics 1.0.
//
// Written by hand because prom-client serialises only its own metric objects, and its cluster aggregator
// gives Prometheus text even to OpenMetrics registries (docs/design.md, pitfall 20). Input is the output of `mergeFamilies`:
// each family name once, histogram samples in exposition-valid order.
//
// Prometheus output is byte-identical to prom-client's `registry.metrics()` for the same registry (counters,
// gauges, histograms, summaries), with one deliberate difference: NaN is written `NaN` (prom-client writes
// `Nan`, which Prometheus happens to accept because Go's ParseFloat is case-insensitive).
//
// Both formatters build the text as one array of pieces joined once (see below), and escape a string only
// after a cheap scan found a character that needs it; no regular expression runs per sample.

import type { MetricFamily, Sample } from '../store/snapshot.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export type ExpositionFormat = 'prometheus' | 'openmetrics';

type Labels = Sample['labels'];

const BACKSLASH = 92;
const QUOTE = 34;
const NEWLINE = 10;

/** Escapes `\` and newline, and `"` too when `quote` (label values; OpenMetrics HELP). */
function escape(text: string, quote: boolean): string {
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH || c === NEWLINE || (quote && c === QUOTE)) break;
  }
  if (i === text.length) return text;
  let out = text.slice(0, i);
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) out += '\\\\';
    else if (c === NEWLINE) out += '\\n';
    else if (quote && c === QUOTE) out += '\\"';
    else out += text[i];
  }
  return out;
}

/** A sample value: integers without a decimal point, floats in JS's shortest round-trip form, `+Inf`, `-Inf`, `NaN`. */
function formatValue(value: unknown): string {
  // JSON turns NaN and infinities into null: anything that is not a number is written NaN.
  if (typeof value !== 'number' || value !== value) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * A float in OpenMetrics canonical form, as client_golang writes it: Go's `strconv.FormatFloat(f, 'g', -1, 64)`
 * (shortest digits; exponent form when the decimal exponent is < -4 or >= 6, with at least two exponent digits),
 * then `.0` appended when there is neither a `.` nor an `e`. So `1.0`, `0.005`, `2.5`, `100000.0`, `1e+06`,
 * `1e-05`, `+Inf`.
 */
export function canonicalFloat(value: number): string {
  if (value !== value) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (value === 0) return '0.0';
  const e = value.toExponential(); // shortest round-trip digits: "d.ddde+x"
  const at = e.indexOf('e');
  const exp = Number(e.slice(at + 1));
  if (exp < -4 || exp >= 6) {
    const sign = exp < 0 ? '-' : '+';
    const digits = String(Math.abs(exp));
    return e.slice(0, at) + 'e' + sign + (digits.length < 2 ? '0' + digits : digits);
  }
  const s = String(value); // plain decimal in this range, same digits
  return s.indexOf('.') === -1 ? s + '.0' : s;
}

/** `le`/`quantile` label value in canonical form; a value that is not a number is kept as written. */
function canonicalLabel(raw: string | number): string {
  if (typeof raw === 'number') return canonicalFloat(raw);
  if (raw === '+Inf') return raw;
  const n = raw === '' ? NaN : Number(raw);
  return n === n ? canonicalFloat(n) : escape(raw, true);
}

// Both formatters push the pieces of the text into one array and join it once. On 32,000 series that
// measured faster than `+=` ropes (their cons cells all stay alive, so the young-generation GC copies them,
// and a rope must still be flattened to be sent) and than writing into a Buffer. Join costs per piece, so
// pieces are few: the label prefixes `{name="` and `",name="` are cached, and a line's end is one short string.

const MAX_CACHED_PREFIXES = 4096;
const openPrefixes = new Map<string, string>();
const nextPrefixes = new Map<string, string>();

function prefix(cache: Map<string, string>, before: string, name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = before + name + '="';
    if (cache.size < MAX_CACHED_PREFIXES) cache.set(name, text);
  }
  return text;
}

/**
 * Appends `{a="x",b="y` (without the closing `"}`) to `out` and returns true; returns false when there are no
 * labels. `canonical` names the label written in canonical float form.
 */
function pushLabels(out: string[], labels: Labels, canonical: string | undefined): boolean {
  let first = true;
  for (const name in labels) {
    const raw = labels[name];
    out.push(
      first ? prefix(openPrefixes, '{', name) : prefix(nextPrefixes, '",', name),
      name === canonical ? canonicalLabel(raw) : typeof raw === 'string' ? escape(raw, true) : String(raw),
    );
    first = false;
  }
  return !first;
}

/** Prometheus text format 0.0.4 (families separated by a blank line, as prom-client writes them). */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  if (families.length === 0) return '\n';
  const out: string[] = [];
  for (let f = 0; f < families.length; f++) {
    const family = families[f];
    const name = family.name;
    out.push(f > 0 ? '\n# HELP ' : '# HELP ', name, ' ', escape(family.help, false), '\n# TYPE ', name, ' ', family.type, '\n');
    const values = family.values;
    for (let i = 0; i < values.length; i++) {
      const s = values[i];
      out.push(s.metricName ?? name);
      out.push((pushLabels(out, s.labels, undefined) ? '"} ' : ' ') + formatValue(s.value) + '\n');
    }
  }
  return out.join('');
}

/**
 * OpenMetrics 1.0 text. Counter families are declared without the `_total` suffix and their samples carry it
 * (a counter whose name lacks `_total` keeps its name as the family and gets `_total` on its samples). `le` and
 * `quantile` values are canonical floats. No blank lines; ends with `# EOF`.
 */
export function formatOpenMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (let f = 0; f < families.length; f++) {
    const family = families[f];
    const type = family.type;
    let name = family.name;
    let counterSample: string | undefined;
    if (type === 'counter') {
      if (name.endsWith('_total')) name = name.slice(0, -6);
      counterSample = name + '_total';
    }
    out.push('# HELP ', name, ' ', escape(family.help, true), '\n# TYPE ', name, ' ', type, '\n');
    const canonical = type === 'histogram' ? 'le' : type === 'summary' ? 'quantile' : undefined;
    const values = family.values;
    for (let i = 0; i < values.length; i++) {
      const s = values[i];
      const mn = s.metricName;
      out.push(counterSample !== undefined && (mn === undefined || mn === family.name) ? counterSample : (mn ?? name));
      out.push((pushLabels(out, s.labels, canonical) ? '"} ' : ' ') + formatValue(s.value) + '\n');
    }
  }
  out.push('# EOF\n');
  return out.join('');
}

/** A q-value; an invalid one counts as 0 (not acceptable), so a malformed header falls back to Prometheus text. */
function parseQ(text: string): number {
  const q = text === '' ? NaN : Number(text);
  if (q !== q) return 0;
  return q < 0 ? 0 : q > 1 ? 1 : q;
}

/**
 * The exposition format for an `Accept` header: OpenMetrics only when `application/openmetrics-text` is listed
 * (any version) with a q-value > 0 that is not lower than the one `text/plain` gets (from its own entry, else
 * `text/*`, else `*\/*`, else 0). Prometheus 2.x asks for OpenMetrics 1.0.0 at q=1 and text/plain at q=0.5.
 */
export function negotiate(accept: string | undefined): ExpositionFormat {
  if (accept === undefined || accept === '') return 'prometheus';
  let openMetrics = -1;
  let textPlain = -1;
  let textAny = -1;
  let any = -1;
  for (const range of accept.split(',')) {
    const semi = range.indexOf(';');
    const mediaType = (semi === -1 ? range : range.slice(0, semi)).trim().toLowerCase();
    let q = 1;
    if (semi !== -1) {
      for (const param of range.slice(semi + 1).split(';')) {
        const eq = param.indexOf('=');
        if (eq !== -1 && param.slice(0, eq).trim().toLowerCase() === 'q') q = parseQ(param.slice(eq + 1).trim());
      }
    }
    switch (mediaType) {
      case 'application/openmetrics-text':
        if (q > openMetrics) openMetrics = q;
        break;
      case 'text/plain':
        if (q > textPlain) textPlain = q;
        break;
      case 'text/*':
        if (q > textAny) textAny = q;
        break;
      case '*/*':
        if (q > any) any = q;
        break;
      default:
    }
  }
  const text = textPlain >= 0 ? textPlain : textAny >= 0 ? textAny : any >= 0 ? any : 0;
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'prometheus';
}

/** The content type of a format. */
export function contentTypeOf(format: ExpositionFormat): string {
  return format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
}
