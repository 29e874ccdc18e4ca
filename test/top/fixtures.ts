// Test data shared by the frame and server-block unit tests of promfork top: a seat's counters, the histogram
// bounds they use, and a parsed scrape at a given time.
import { parseExposition } from '../../src/top/exposition-parser.js';
import type { ScrapeSnapshot } from '../../src/top/frame.js';

export const BOUNDS = ['0.25', '0.5', '1', '2', '+Inf'];
/** Local time 03:04:05 in any time zone. */
export const TIME = new Date(2024, 0, 2, 3, 4, 5);

export interface SeatData {
  pid?: number;
  state?: string;
  requests: number;
  /** Cumulative bucket counts, one per BOUNDS entry. */
  buckets: number[];
  failures?: Record<string, number>;
  memory?: number;
  cpu?: number;
  uptime?: number;
}

export function snap(text: string, atMs: number): ScrapeSnapshot {
  return { exposition: parseExposition(text), at: atMs, time: TIME };
}
