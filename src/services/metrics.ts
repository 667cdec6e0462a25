import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATUSES } from '../machines/status.js';
import type { JobEvent } from './interpreter.js';
import type { RequestSample } from './registry/client.js';
import type { JobStore } from './store/types.js';

/** Seconds to the registry's response headers: from a HEAD on a near registry to a slow manifest PUT. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A node's Prometheus metrics. Counters are this node's (sum them over nodes); job counts by
 * status and the queue are the store's, read at each scrape, the same on every node (take one).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #bytes: Counter;
  readonly #blobs: Counter<'how'>;
  readonly #requests: Counter<'registry' | 'method' | 'status'>;
  readonly #latency: Histogram<'registry' | 'method'>;
  readonly #throttled: Counter<'registry'>;
  readonly #takeovers: Counter;

  constructor(jobs: Pick<JobStore, 'list'>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#bytes = new Counter({ name: 'ferry_bytes_copied_total', help: 'Blob bytes copied to destination registries', registers });
    this.#blobs = new Counter({ name: 'ferry_blobs_total', help: 'Blobs moved to destination registries, by how: copied or mounted', labelNames: ['how'], registers });
    this.#requests = new Counter({ name: 'ferry_registry_requests_total', help: 'Requests to registries by registry host, method and status (error: no answer)', labelNames: ['registry', 'method', 'status'], registers });
    this.#latency = new Histogram({ name: 'ferry_registry_request_duration_seconds', help: 'Time to the response headers of registry requests', labelNames: ['registry', 'method'], buckets: LATENCY_BUCKETS, registers });
    this.#throttled = new Counter({ name: 'ferry_registry_throttled_total', help: 'Requests a registry refused with 429 Too Many Requests', labelNames: ['registry'], registers });
    this.#takeovers = new Counter({ name: 'ferry_lease_takeovers_total', help: 'Jobs this node took over from a node whose lease ran out or that handed them back', registers });
    const counts = () => Promise.all(JOB_STATUSES.map(async (status) => [status, (await jobs.list({ status, limit: 1 })).total] as const));
    new Gauge({
      name: 'ferry_jobs',
      help: 'Jobs by status, in the store',
      labelNames: ['status'],
      registers,
      async collect() {
        for (const [status, total] of await counts()) this.set({ status }, total);
      },
    });
    new Gauge({
      name: 'ferry_queue_depth',
      help: 'Pending jobs, waiting for a worker on any node',
      registers,
      async collect() {
        this.set((await jobs.list({ status: 'pending', limit: 1 })).total);
      },
    });
  }

  request(sample: RequestSample): void {
    const { registry, method } = sample;
    this.#requests.inc({ registry, method, status: sample.status ?? 'error' });
    this.#latency.observe({ registry, method }, sample.seconds);
    if (sample.status === 429) this.#throttled.inc({ registry });
  }

  /** Counts blobs as the job's log says them, when it says them. */
  jobEvent(event: JobEvent): void {
    if (event.type !== 'blob.done' || (event.how !== 'copied' && event.how !== 'mounted')) return;
    this.#blobs.inc({ how: event.how });
    if (event.how === 'copied') this.#bytes.inc(event.size);
  }

  takeover(): void {
    this.#takeovers.inc();
  }
}
