import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ReplicationInput } from '../machines/replication.js';
import { buildApi } from '../services/api/app.js';
import { checkRegistry } from '../services/domain/registry.js';
import { STATELY_INSPECTOR_URL, statelyInspector } from '../services/inspector/stately.js';
import type { RegistryResolver } from '../services/registry/registries.js';
import { FerryService } from '../services/service.js';
import { ENDED_STATUSES } from '../machines/status.js';
import type { Job } from '../services/store/types.js';
import type { CommandIO } from './io.js';


/**
 * `ferry copy --inspect`: the copy runs as a job of an in-memory service, so the web console
 * shows it live (and Stately's inspector too, when its bridge runs). The console stays up
 * after the job ends, until Ctrl-C.
 */
export async function copyWithConsole(input: ReplicationInput, resolve: RegistryResolver, io: CommandIO, logger: Logger): Promise<number> {
  const stately = statelyInspector(io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL);
  // The command's resolver, not the store, gives the logins: docker's helpers and identity tokens have no stored form.
  const service = await FerryService.start({ database: ':memory:', workers: 1, logger, inspect: stately.inspect, registries: resolve });
  const api = await buildApi(service, {});
  try {
    for (const url of new Set([input.source.registry, input.destination.registry])) {
      const options = await resolve(url);
      await service.store.registries.create(checkRegistry({ name: url, url, insecure: options.insecure ?? false, ca: options.ca ?? null, requestsPerSecond: options.requestsPerSecond ?? null }));
    }
    const { jobs } = await service.store.executions.create({
      policyId: null,
      trigger: 'manual',
      jobs: [{ operation: 'copy', source: `${input.source.registry}/${input.source.repository}`, destination: `${input.destination.registry}/${input.destination.repository}`, input }],
    });
    const job = jobs[0]!;
    await api.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.server.address() as AddressInfo;
    io.stdout.write(`console: http://127.0.0.1:${port}/#/jobs/${job.id}\n`);
    io.stdout.write(`Stately inspector: run "npx ferry stately-inspector" (connects to ${io.env.FERRY_INSPECT_URL ?? STATELY_INSPECTOR_URL})\n`);

    const ended = new Promise<Job>((resolveEnd) => {
      service.feed.subscribe(async (change) => {
        if (change.jobId === job.id && ENDED_STATUSES.has(change.status)) resolveEnd((await service.store.jobs.get(job.id))!);
      });
    });
    service.inspector.subscribe(job.id, (event) => event.type === 'log' && io.stdout.write(`${event.entry.message}\n`));
    let interrupted = false;
    void io.interrupted.then(() => {
      interrupted = true;
      // Ctrl-C after the job ended only closes the console.
      void service.control.stopJob(job.id).catch(() => undefined);
    });
    service.pool.wake();
    const final = await ended;
    if (final.status === 'error') io.stderr.write(`error: ${final.error?.message}\n`);
    if (!interrupted) {
      io.stdout.write(`job ${final.status}; the console stays up until Ctrl-C\n`);
      await io.interrupted;
    }
    if (final.status === 'finished') return 0;
    return final.status === 'stopped' ? 130 : 1;
  } finally {
    stately.stop();
    await api.close();
    await service.close();
  }
}
