// The records a run (one primary's data in a store) is made of beyond its snapshots, typed once for the primary
// that writes them and the sidecar exporter that reads them: the retired record (the fold of dead workers) and the
// listing of runs found in a store.

import type { Snapshot } from './snapshot.js';

/** One run found in a store: the instance (server) name it was written under and its primary's pid. */
export interface RunListing {
  instance: string;
  ppid: number;
}

/**
 * What the primary persists with every fold (SnapshotStore.writeRetired): the retired totals of its dead workers
 * and the pids already folded into them, so that a reader that still finds one of their snapshots does not count
 * it twice.
 */
export interface RetiredRecord {
  /** `RetiredTotals.toJSON()` (src/exporter/merge.ts), checked by `RetiredTotals.fromJSON` when read. */
  totals: unknown;
  /** The most recently folded pids. */
  folded: number[];
}

/** A retired record as read back from a store (whose envelope only was checked): missing parts read as empty. */
export function readRetiredRecord(data: unknown): RetiredRecord {
  if (!data || typeof data !== 'object') return { totals: undefined, folded: [] };
  const d = data as { totals?: unknown; folded?: unknown };
  return { totals: d.totals, folded: Array.isArray(d.folded) ? d.folded.filter((p): p is number => typeof p === 'number') : [] };
}

/** Everything of one run: its snapshots, what was wrong with unreadable ones, and its retired record. */
export interface RunData {
  snapshots: Snapshot[];
  problems: string[];
  retired: unknown | null;
}
