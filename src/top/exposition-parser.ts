// A parser for the Prometheus text exposition format 0.0.4 (and the OpenMetrics 1.0 text that shares its
// sample syntax): `# HELP` and `# TYPE` lines, other comments, label values with the escapes `\\`, `\"` and
// `\n`, values `+Inf`, `-Inf`, `NaN`, an optional timestamp, and OpenMetrics exemplars (skipped) and `# EOF`.
//
// Samples are grouped into families by the `# TYPE` declarations: `x_bucket`, `x_sum`, `x_count` belong to
// histogram `x`, `x_total` to an OpenMetrics counter `x`, and so on. A sample whose family was not declared
// is a family of its own, typed `untyped`. A line that is not valid throws an ExpositionSyntaxError that
// names the line.

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'info' | 'stateset' | 'untyped' | 'unknown';

export interface ParsedSample {
  /** The sample's own name (`x_bucket` for a histogram bucket). */
  name: string;
  /** Label values unescaped. */
  labels: Record<string, string>;
  value: number;
  /** As written: milliseconds (text 0.0.4) or seconds (OpenMetrics); undefined when absent. */
  timestamp?: number;
}

export interface ParsedFamily {
  name: string;
  type: FamilyType;
  help: string;
  samples: ParsedSample[];
}

export interface Exposition {
  /** Families in order of first appearance. */
  families: Map<string, ParsedFamily>;
  /** Every sample, in order. */
  samples: ParsedSample[];
  /** Family names as declared by `# TYPE` lines, in order, duplicates kept (a family declared twice breaks law L6, docs/design.md). */
  types: string[];
}

export class ExpositionSyntaxError extends Error {
  constructor(
    readonly lineNumber: number,
    readonly line: string,
    readonly reason: string,
  ) {
    super(`line ${lineNumber}: ${reason}: ${truncate(line, 80)}`);
    this.name = 'ExpositionSyntaxError';
  }
}

const SUFFIXES: Partial<Record<FamilyType, readonly string[]>> = {
  counter: ['_total', '_created'],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  gaugehistogram: ['_bucket', '_gsum', '_gcount'],
  summary: ['_sum', '_count', '_created'],
  info: ['_info'],
};

const TYPES = new Set<FamilyType>(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'info', 'stateset', 'untyped', 'unknown']);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A sample value or timestamp as Prometheus reads it (Go's ParseFloat: `Inf`, `+Inf`, `NaN` in any case). */
export function parseNumber(text: string): number | undefined {
  if (FLOAT.test(text)) return Number(text);
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  if (lower === 'nan') return NaN;
  return undefined;
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, ParsedFamily>();
  const samples: ParsedSample[] = [];
  const types: string[] = [];
  const declared = (name: string): ParsedFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) continue; // any other comment, `# UNIT`, `# EOF`
      const f = declared(m[2]!);
      const rest = m[3] ?? '';
      if (m[1] === 'HELP') f.help = unescapeHelp(rest);
      else {
        const type = rest.trim().toLowerCase() as FamilyType;
        if (!TYPES.has(type)) throw new ExpositionSyntaxError(i + 1, line, `unknown metric type "${rest.trim()}"`);
        f.type = type;
        types.push(f.name);
      }
      continue;
    }
    const sample = parseSampleLine(line, i + 1);
    samples.push(sample);
    familyOf(sample.name, families, declared).samples.push(sample);
  }
  return { families, samples, types };
}

function familyOf(name: string, families: Map<string, ParsedFamily>, declared: (name: string) => ParsedFamily): ParsedFamily {
  const exact = families.get(name);
  if (exact) return exact;
  for (const [type, suffixes] of Object.entries(SUFFIXES) as [FamilyType, readonly string[]][]) {
    for (const suffix of suffixes) {
      if (!name.endsWith(suffix)) continue;
      const base = families.get(name.slice(0, -suffix.length));
      if (base && base.type === type) return base;
    }
  }
  return declared(name);
}

function parseSampleLine(line: string, lineNumber: number): ParsedSample {
  const fail = (reason: string): never => {
    throw new ExpositionSyntaxError(lineNumber, line, reason);
  };
  let pos = 0;
  const skipSpaces = () => {
    while (pos < line.length && (line[pos] === ' ' || line[pos] === '\t')) pos++;
  };
  skipSpaces();
  const nameMatch = METRIC_NAME.exec(line.slice(pos));
  if (!nameMatch) return fail('expected a metric name');
  const name = nameMatch[0];
  pos += name.length;
  const labels: Record<string, string> = {};
  skipSpaces();
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      skipSpaces();
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const labelMatch = LABEL_NAME.exec(line.slice(pos));
      if (!labelMatch) return fail('expected a label name');
      const label = labelMatch[0];
      pos += label.length;
      skipSpaces();
      if (line[pos] !== '=') return fail(`expected "=" after label ${label}`);
      pos++;
      skipSpaces();
      if (line[pos] !== '"') return fail(`expected a quoted value for label ${label}`);
      pos++;
      let value = '';
      for (;;) {
        if (pos >= line.length) return fail(`unterminated value of label ${label}`);
        const c = line[pos]!;
        if (c === '"') {
          pos++;
          break;
        }
        if (c === '\\') {
          const next = line[pos + 1];
          if (next === '\\') value += '\\';
          else if (next === '"') value += '"';
          else if (next === 'n') value += '\n';
          else return fail(`invalid escape "\\${next ?? ''}" in label ${label}`);
          pos += 2;
          continue;
        }
        value += c;
        pos++;
      }
      if (Object.hasOwn(labels, label)) return fail(`label ${label} given twice`);
      labels[label] = value;
      skipSpaces();
      if (line[pos] === ',') {
        pos++;
        continue;
      }
      if (line[pos] === '}') {
        pos++;
        break;
      }
      return fail('expected "," or "}" after a label value');
    }
  }
  // The value, an optional timestamp, and (OpenMetrics) an optional exemplar after `#`.
  const hash = line.indexOf('#', pos);
  const fields = (hash < 0 ? line.slice(pos) : line.slice(pos, hash)).trim().split(/[ \t]+/);
  if (fields[0] === '' || fields.length > 2) return fail('expected a value and an optional timestamp');
  const value = parseNumber(fields[0]!);
  if (value === undefined) return fail(`invalid value "${fields[0]}"`);
  const sample: ParsedSample = { name, labels, value };
  if (fields.length === 2) {
    const ts = parseNumber(fields[1]!);
    if (ts === undefined || !Number.isFinite(ts)) return fail(`invalid timestamp "${fields[1]}"`);
    sample.timestamp = ts;
  }
  return sample;
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n|")/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** A label value written back as in the exposition (`\\`, `\"`, `\n`). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}
