// A small worker snapshot (a counter and a histogram) for store tests.
import type { Snapshot } from '../../src/store/snapshot.js';

export function snapshot(pid: number, seat: number, seq: number, ppid: number, value = 42): Snapshot {
  return {
    version: 1,
    pid,
    seat,
    ppid,
    seq,
    takenAt: 1_700_000_000_000 + seq,
    metrics: [
      {
        name: 'gunicorn_worker_requests_total',
        help: 'Total requests',
        type: 'counter',
        aggregator: 'sum',
        values: [{ value, labels: { worker_id: `worker_${seat}` } }],
      },
      {
        name: 'gunicorn_worker_request_duration_seconds',
        help: 'Request duration',
        type: 'histogram',
        aggregator: 'sum',
        values: [
          { value: 3, labels: { le: 0.005, worker_id: `worker_${seat}` }, metricName: 'gunicorn_worker_request_duration_seconds_bucket' },
          { value: 5, labels: { le: '+Inf', worker_id: `worker_${seat}` }, metricName: 'gunicorn_worker_request_duration_seconds_bucket' },
          { value: 0.25, labels: { worker_id: `worker_${seat}` }, metricName: 'gunicorn_worker_request_duration_seconds_sum' },
          { value: 5, labels: { worker_id: `worker_${seat}` }, metricName: 'gunicorn_worker_request_duration_seconds_count' },
        ],
      },
    ],
  };
}
