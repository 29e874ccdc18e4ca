// Scraping /metrics in the benchmarks: one timed GET (gzip optional), and reading sample values from the body.

import http from 'node:http';
import { gunzipSync } from 'node:zlib';

export const SCRAPE_TIMEOUT_MS = 30_000;

export interface Scrape {
  status: number;
  /** Request sent to body received, ms. */
  ms: number;
  /** Decoded body ('' on error). */
  body: string;
  /** Bytes on the wire. */
  bytes: number;
  error: string | null;
  /** Unix ms. */
  startedAt: number;
  endedAt: number;
}

export function scrape(url: string, agent: http.Agent | false, gzip = false, timeoutMs = SCRAPE_TIMEOUT_MS): Promise<Scrape> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const t0 = performance.now();
    let settled = false;
    const done = (r: Omit<Scrape, 'ms' | 'startedAt' | 'endedAt'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, ms: performance.now() - t0, startedAt, endedAt: Date.now() });
    };
    const req = http.get(url, { agent, timeout: timeoutMs, headers: gzip ? { 'Accept-Encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let body: string;
        try {
          body = (res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        } catch (err) {
          done({ status: res.statusCode ?? 0, body: '', bytes: raw.length, error: `bad body: ${(err as Error).message}` });
          return;
        }
        const status = res.statusCode ?? 0;
        done({ status, body, bytes: raw.length, error: status === 200 ? null : `HTTP ${status}: ${body.trim().slice(0, 200)}` });
      });
      res.on('error', (err) => done({ status: res.statusCode ?? 0, body: '', bytes: 0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done({ status: 0, body: '', bytes: 0, error: err.message }));
  });
}

/** Series (sample lines) in an exposition; `skip`: a name prefix not counted. */
export function seriesCount(body: string, skip?: string): number {
  let n = 0;
  for (const line of body.split('\n')) if (line !== '' && line[0] !== '#' && !(skip && line.startsWith(skip))) n++;
  return n;
}

/** The values of the samples named `name` (with or without labels) whose labels match `labels` (a substring). */
export function sampleValues(body: string, name: string, labels = ''): number[] {
  const values: number[] = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labels && !rest.includes(labels)) continue;
    values.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return values;
}

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
