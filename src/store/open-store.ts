// Opens the snapshot store a process should use: the directory store (PROMETHEUS_MULTIPROC_DIR).

import type { Settings } from '../config/types.js';
import { DirectoryStore } from './directory-store.js';
import type { SnapshotStore } from './store.js';

export async function openStore(settings: Settings, ppid: number): Promise<SnapshotStore> {
  return new DirectoryStore(settings.multiprocDir, { ppid });
}
