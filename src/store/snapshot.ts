// The snapshot: what a worker persists of its metrics (ours and the app's prom-client registries).
// Families and samples have the shape of prom-client's `registry.getMetricsAsJSON()`, so a worker
// writes them without transforming anything.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** How gauges from several live workers combine (prom-client's `aggregator` names). */
export type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

export interface Sample {
  value: number;
  labels: Record<string, string | number>;
  /** For histograms and summaries: the sample's full name (`x_bucket`, `x_sum`, `x_count`); else absent. */
  metricName?: string;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  values: Sample[];
  aggregator: Aggregator;
}

export interface Snapshot {
  version: 1;
  /** The worker's pid, its seat, and the primary's pid (the run it belongs to). */
  pid: number;
  seat: number;
  ppid: number;
  /** Increases with every write by this worker. */
  seq: number;
  /** Unix milliseconds when the worker took the snapshot. */
  takenAt: number;
  metrics: MetricFamily[];
}
