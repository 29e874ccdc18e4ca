// Scraping and parsing Prometheus text exposition in tests: every sample by name and label set.
import http from 'node:http';
import { escapeLabelValue, parseExposition as parse } from '../../src/top/exposition-parser.js';

export interface Scrape {
  text: string;
  /** `name{a="1",b="2"}` (labels sorted) → value. */
  samples: Map<string, number>;
  /** Family names declared by `# TYPE`, in order (duplicates kept, to check law L6, docs/design.md). */
  types: string[];
  contentType: string;
  ms: number;
}

/** `name{a="1",b="2"}`: labels sorted, values escaped as in the exposition. */
export function seriesKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

/** promfork's own parser (src/top), keyed for tests: a sample given twice keeps its last value. */
export function parseExposition(text: string): { samples: Map<string, number>; types: string[] } {
  const parsed = parse(text);
  const samples = new Map<string, number>();
  for (const s of parsed.samples) samples.set(seriesKey(s.name, s.labels), s.value);
  return { samples, types: parsed.types };
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

const MONOTONIC = /^(gunicorn_worker_requests_total|gunicorn_worker_request_duration_seconds_(count|bucket)|gunicorn_worker_failed_requests_total|gunicorn_worker_error_handling_total)(\{|$)/;

/** Checks every counter and histogram series of the app's metrics against the previous scrape (docs/design.md, L1). */
export class MonotonicWatch {
  private previous = new Map<string, number>();
  readonly violations: string[] = [];
  readonly requestTotals: number[] = [];

  see(s: Scrape): Scrape {
    const now = new Map([...s.samples].filter(([k]) => MONOTONIC.test(k)));
    for (const [key, before] of this.previous) {
      const after = now.get(key);
      if (after === undefined) this.violations.push(`${key} vanished (was ${before})`);
      else if (after < before) this.violations.push(`${key} went from ${before} to ${after}`);
    }
    this.previous = now;
    this.requestTotals.push(sum(s, 'gunicorn_worker_requests_total'));
    return s;
  }
}
