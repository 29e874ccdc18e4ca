// Scraping and parsing Prometheus text exposition in tests: every sample by name and label set.
import http from 'node:http';

export interface Scrape {
  text: string;
  /** `name{a="1",b="2"}` (labels sorted) → value. */
  samples: Map<string, number>;
  /** Family names declared by `# TYPE`, in order (duplicates kept, to check law L6). */
  types: string[];
  contentType: string;
  ms: number;
}

export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

export function parseExposition(text: string): { samples: Map<string, number>; types: string[] } {
  const samples = new Map<string, number>();
  const types: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) types.push(line.split(' ')[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    const v = m[3]!;
    samples.set(seriesKey(m[1]!, labels), v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v));
  }
  return { samples, types };
}

export function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`scrape ${url}: ${res.statusCode} ${body}`));
        resolve({ text: body, ...parseExposition(body), contentType: String(res.headers['content-type']), ms: performance.now() - t0 });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
  });
}

/** Sum of every sample of `name` whose labels include `match`. */
export function sum(s: Scrape, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of s.samples) {
    const brace = key.indexOf('{');
    const n = brace < 0 ? key : key.slice(0, brace);
    if (n !== name) continue;
    if (Object.entries(match).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

/** Every series of `name` (keys). */
export function seriesOf(s: Scrape, name: string): string[] {
  return [...s.samples.keys()].filter((k) => k === name || k.startsWith(`${name}{`));
}
