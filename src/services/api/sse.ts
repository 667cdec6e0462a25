import type { FastifyInstance, FastifyReply } from 'fastify';

const HEARTBEAT_MS = 15_000;

export interface EventStream {
  /** With an `id`, a client that reconnects sends it back as `Last-Event-ID`. */
  send(event: string, data: unknown, id?: number): void;
  /** Runs when the stream ends, whoever ends it. */
  onClose(cleanup: () => void): void;
}

/**
 * Server-Sent Events on a hijacked reply, with comment heartbeats to keep proxies from timing
 * out. Streams never end on their own, so closing the server ends them (or it waits forever).
 */
export function eventStreams(app: FastifyInstance): (reply: FastifyReply) => EventStream {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of open) close();
  });
  return (reply) => {
    reply.hijack();
    const stream = reply.raw;
    stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    stream.write(': connected\n\n');
    const cleanups: Array<() => void> = [];
    const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), HEARTBEAT_MS);
    const close = () => {
      if (!open.delete(close)) return;
      clearInterval(heartbeat);
      for (const cleanup of cleanups) cleanup();
      stream.end();
    };
    open.add(close);
    stream.once('close', close);
    return {
      send: (event, data, id) => stream.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      onClose: (cleanup) => cleanups.push(cleanup),
    };
  };
}
