/**
 * A far link for the bench (issue 14), emulated at the TCP level since the kernel here has no
 * netem. One `Link` stands for the client's connection to a far network: every registry behind
 * it is reached through a local port (`expose`), and every connection through it shares one
 * bandwidth per direction (down: registries → client, up: client → registries), each direction
 * with its one-way delay.
 *
 * Each direction is a serialising queue: a chunk departs once the chunk before it, from whichever
 * connection, has gone out at `bytes / bandwidth`, and arrives a one-way delay later; so chunks
 * keep their order. A new connection passes no byte before its handshake is over (`connectDelayMs`,
 * one round trip unless set). Half-closes and resets travel the same queues, behind the bytes sent
 * before them. When a direction holds more than its bandwidth × delay plus `QUEUE_SLACK_BYTES`, or
 * a receiving socket's buffer is full, the socket feeding it is paused: memory stays bounded and
 * the senders' TCP flow control still works. Nothing arrives early; timers make a delivery up to
 * about a millisecond late. Not modelled: loss, TCP slow start and windows.
 *
 * Default profile (`FAR_LINK`): a 40 ms round trip (20 ms each way) and 200 Mbit/s each direction.
 *
 * `startLink` runs a Link in a process of its own (bench/link-process.ts), so that its CPU is not
 * counted as the client's.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { outputTail } from './process.js';

export interface DirectionProfile {
  /** One-way delay, ms. */
  delayMs: number;
  bitsPerSecond: number;
}

export interface LinkProfile {
  /** Client → registries. */
  up: DirectionProfile;
  /** Registries → client. */
  down: DirectionProfile;
  /** Before a new connection passes any byte (the TCP handshake); default: one round trip. */
  connectDelayMs?: number;
}

/** 40 ms round trip (20 ms each way), 200 Mbit/s each direction. */
export const FAR_LINK: LinkProfile = {
  up: { delayMs: 20, bitsPerSecond: 200e6 },
  down: { delayMs: 20, bitsPerSecond: 200e6 },
};

export function roundTripMs(profile: LinkProfile): number {
  return profile.up.delayMs + profile.down.delayMs;
}

export function connectDelayMs(profile: LinkProfile): number {
  return profile.connectDelayMs ?? roundTripMs(profile);
}

export function describeLink(profile: LinkProfile): string {
  const rate = (direction: DirectionProfile): string => `${direction.bitsPerSecond / 1e6} Mbit/s`;
  const same = profile.up.bitsPerSecond === profile.down.bitsPerSecond;
  return `${roundTripMs(profile)} ms round trip, ${same ? `${rate(profile.up)} each way` : `${rate(profile.down)} down, ${rate(profile.up)} up`}`;
}

export interface LinkStats {
  /** Bytes delivered client → registries. */
  up: number;
  /** Bytes delivered registries → client. */
  down: number;
  connections: number;
}

/** Beyond bandwidth × delay, what a direction may hold before it pauses the sockets feeding it. */
const QUEUE_SLACK_BYTES = 256 * 1024;

interface Timer {
  cancel(): void;
}

/** Calls `callback` once `performance.now()` has reached `deadline`: a timer may fire up to a millisecond early. */
function at(deadline: number, callback: () => void): Timer {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    timer = setTimeout(() => {
      if (performance.now() >= deadline) callback();
      else arm();
    }, Math.max(1, Math.ceil(deadline - performance.now())));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

interface InFlight {
  arrives: number;
  bytes: number;
  deliver: () => void;
}

/** One direction of the link: a serialising queue, then the one-way delay. */
class Direction {
  carried = 0;
  private readonly bytesPerMs: number;
  private readonly limit: number;
  private busyUntil = 0;
  private queued = 0;
  private readonly queue: InFlight[] = [];
  private head = 0;
  private timer: Timer | undefined;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly profile: DirectionProfile) {
    this.bytesPerMs = profile.bitsPerSecond / 8 / 1000;
    this.limit = this.bytesPerMs * profile.delayMs + QUEUE_SLACK_BYTES;
  }

  /** Queues `bytes` (0 for a FIN or a reset) to be delivered; false once the direction is over its limit. */
  send(bytes: number, deliver: () => void): boolean {
    const departs = Math.max(performance.now(), this.busyUntil) + bytes / this.bytesPerMs;
    this.busyUntil = departs;
    this.queue.push({ arrives: departs + this.profile.delayMs, bytes, deliver });
    this.queued += bytes;
    this.schedule();
    return this.queued <= this.limit;
  }

  /** `callback` once the direction is back under its limit. */
  whenRoom(callback: () => void): void {
    this.waiting.add(callback);
  }

  close(): void {
    this.timer?.cancel();
    this.queue.length = 0;
    this.head = 0;
    this.waiting.clear();
  }

  private schedule(): void {
    const next = this.queue[this.head];
    if (this.timer || !next) return;
    this.timer = at(next.arrives, () => {
      this.timer = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const now = performance.now();
    for (let next = this.queue[this.head]; next && next.arrives <= now; next = this.queue[this.head]) {
      this.head += 1;
      this.queued -= next.bytes;
      this.carried += next.bytes;
      next.deliver();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.queued <= this.limit && this.waiting.size > 0) {
      const waiting = [...this.waiting];
      this.waiting.clear();
      for (const callback of waiting) callback();
    }
    this.schedule();
  }
}

/** One direction of one connection: what `source` sends goes through `direction` to `sink`. */
class Half {
  private linkFull = false;
  private sinkFull = false;
  private ended = false;

  constructor(
    private readonly source: Socket,
    private readonly sink: Socket,
    private readonly direction: Direction,
  ) {}

  /** After the handshake. */
  start(): void {
    if (this.source.destroyed) {
      this.reset();
      return;
    }
    this.source.on('data', (chunk: Buffer) => {
      if (!this.direction.send(chunk.length, () => this.write(chunk)) && !this.linkFull) {
        this.linkFull = true;
        this.direction.whenRoom(() => {
          this.linkFull = false;
          this.update();
        });
      }
      this.update();
    });
    this.source.once('end', () => {
      this.ended = true;
      this.direction.send(0, () => {
        if (!this.sink.destroyed) this.sink.end();
      });
    });
    // A source that closes without its FIN, or with an error, resets the other end.
    this.source.once('close', (hadError) => {
      if (hadError || !this.ended) this.reset();
    });
    this.update();
  }

  private reset(): void {
    this.direction.send(0, () => {
      if (!this.sink.destroyed) this.sink.resetAndDestroy();
    });
  }

  private write(chunk: Buffer): void {
    if (this.sink.destroyed || this.sink.writableEnded) return;
    if (this.sink.write(chunk) || this.sinkFull) return;
    this.sinkFull = true;
    this.sink.once('drain', () => {
      this.sinkFull = false;
      this.update();
    });
    this.update();
  }

  private update(): void {
    if (this.source.destroyed) return;
    if (this.linkFull || this.sinkFull) this.source.pause();
    else this.source.resume();
  }
}

export class Link {
  private readonly up: Direction;
  private readonly down: Direction;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<Timer>();
  private connections = 0;

  constructor(readonly profile: LinkProfile = FAR_LINK) {
    this.up = new Direction(profile.up);
    this.down = new Direction(profile.down);
  }

  /** A local `127.0.0.1:port` whose connections go to `target` (`host:port`) through the link. */
  async expose(target: string): Promise<string> {
    const { hostname, port } = new URL(`tcp://${target}`);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.accept(client, hostname, Number(port)));
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  stats(): LinkStats {
    return { up: this.up.carried, down: this.down.carried, connections: this.connections };
  }

  async close(): Promise<void> {
    for (const timer of this.timers) timer.cancel();
    for (const socket of this.sockets) socket.destroy();
    this.up.close();
    this.down.close();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private accept(client: Socket, host: string, port: number): void {
    this.connections += 1;
    const upstream = connect({ host, port, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      // Errors end in 'close', which each Half passes on.
      socket.on('error', () => {});
      socket.once('close', () => this.sockets.delete(socket));
    }
    const halves = [new Half(client, upstream, this.up), new Half(upstream, client, this.down)];
    const timer = at(performance.now() + connectDelayMs(this.profile), () => {
      this.timers.delete(timer);
      for (const half of halves) half.start();
    });
    this.timers.add(timer);
  }
}

type Call = { type: 'expose'; target: string } | { type: 'stats' };
export type LinkRequest = Call & { id: number };
export type LinkReply = { type: 'ready' } | { id: number; result?: unknown; error?: string };

/** A Link in a child process of its own. */
export interface LinkProcess {
  pid: number;
  profile: LinkProfile;
  expose(target: string): Promise<string>;
  stats(): Promise<LinkStats>;
  /** At once, for a signal handler; `stop` also waits for the process to end. */
  kill(): void;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

export async function startLink(profile: LinkProfile = FAR_LINK): Promise<LinkProcess> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = fork(new URL('./link-process.ts', import.meta.url).pathname, [JSON.stringify(profile)], {
    execArgv: ['--import', tsx],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = outputTail(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  const failAll = (): void => {
    for (const { reject } of pending.values()) reject(new Error(`the link process ended:\n${output()}`));
    pending.clear();
  };
  child.once('exit', failAll);
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const stop = async (): Promise<void> => {
    kill();
    await exited;
  };

  let ready: () => void;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    child.once('exit', (code, signal) => reject(new Error(`the link process exited (${code ?? signal}) before it was ready:\n${output()}`)));
    setTimeout(() => reject(new Error(`the link process not ready after ${READY_TIMEOUT_MS} ms:\n${output()}`)), READY_TIMEOUT_MS).unref();
  });
  child.on('message', (message: LinkReply) => {
    if ('type' in message) return ready();
    const request = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) request?.reject(new Error(message.error));
    else request?.resolve(message.result);
  });
  const ask = <T>(request: Call): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ ...request, id }, (error) => {
        if (!error) return;
        pending.delete(id);
        reject(error);
      });
    });

  try {
    await started;
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    pid: child.pid!,
    profile,
    expose: (target) => ask<string>({ type: 'expose', target }),
    stats: () => ask<LinkStats>({ type: 'stats' }),
    kill,
    stop,
  };
}
