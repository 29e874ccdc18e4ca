// The store: where workers' snapshots live so the primary (or the sidecar exporter) can read them and a dead
// worker's last values outlive it. One store instance serves one primary run: every snapshot it writes or reads
// belongs to the run of the primary whose pid is `ppid`. Two implementations: a directory (the default) and Redis.

import type { Snapshot } from './snapshot.js';

/** The run a store serves: the primary's pid. */
export interface StoreRun {
  ppid: number;
}

export interface SnapshotStore {
  readonly kind: 'directory' | 'redis';

  /**
   * Persist a worker's snapshot atomically, replacing its previous one (readers see the old or the new one, never
   * a mix). Writes for the same pid are applied in call order. Rejects on failure, previous snapshot intact;
   * never throws synchronously. Rejects when `s.ppid` is not this run's.
   */
  writeSnapshot(s: Snapshot): Promise<void>;

  /** The last snapshot of worker `pid` of this run; null when there is none. Rejects when it is unreadable. */
  readSnapshot(pid: number): Promise<Snapshot | null>;

  /**
   * Every worker snapshot of this run. A snapshot that cannot be read or is invalid is left out and described in
   * `problems` (one line each, naming it); one bad snapshot never fails the whole read.
   */
  readAll(): Promise<{ snapshots: Snapshot[]; problems: string[] }>;

  /** Forget worker `pid`'s snapshot (after its values were folded into the retired data). Missing is fine. */
  removeSnapshot(pid: number): Promise<void>;

  /** Persist, atomically, the run's fold of retired (dead) workers: any JSON-serialisable value. */
  writeRetired(data: unknown): Promise<void>;

  /** The run's retired fold; null when none was written. Rejects when it is unreadable. */
  readRetired(): Promise<unknown | null>;

  /** Heartbeat (Redis): extend the TTL of these live workers' snapshots, the retired fold and the index. */
  refresh?(pids: number[]): Promise<void>;

  /** Remove everything of this run (snapshots and retired fold); never another run's data. */
  clear(): Promise<void>;

  /** Wait for pending writes, then release resources. Later writes reject. */
  close(): Promise<void>;
}
