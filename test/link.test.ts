/**
 * The bench's far-link emulator (bench/link.ts) alone, on 127.0.0.1 with small TCP servers. Only
 * lower bounds on time are asserted: the emulator never delivers early, whatever the machine's
 * load; how close it comes to its profile is for the bench to show.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Link, startLink } from '../bench/link.js';
import type { LinkProfile } from '../bench/link.js';

/** Asymmetric, so that a mixed-up direction shows. */
const PROFILE: LinkProfile = {
  up: { delayMs: 15, bitsPerSecond: 80e6 },
  down: { delayMs: 10, bitsPerSecond: 40e6 },
};
const CONNECT_DELAY_MS = 25;
const bytesPerMs = (bitsPerSecond: number): number => bitsPerSecond / 8 / 1000;

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function listen(onConnection: (socket: Socket) => void): Promise<string> {
  const server: Server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  stops.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends back what it reads; ends when its client has. */
const echo = (socket: Socket): void => void socket.pipe(socket);

async function linkTo(target: string, profile = PROFILE): Promise<{ link: Link; host: string }> {
  const link = new Link(profile);
  stops.push(() => link.close());
  return { link, host: await link.expose(target) };
}

function open(host: string): Socket {
  const [address, port] = host.split(':');
  return connect({ host: address!, port: Number(port), allowHalfOpen: true });
}

interface Received {
  bytes: Buffer;
  /** performance.now() of the first and last chunk. */
  first: number;
  last: number;
  /** The error the socket closed with, if any. */
  error?: NodeJS.ErrnoException;
}

/** Everything `socket` reads until it ends or closes. */
function receive(socket: Socket): Promise<Received> {
  const chunks: Buffer[] = [];
  let first = Number.NaN;
  let last = Number.NaN;
  let error: NodeJS.ErrnoException | undefined;
  socket.on('data', (chunk: Buffer) => {
    last = performance.now();
    if (chunks.length === 0) first = last;
    chunks.push(chunk);
  });
  socket.on('error', (cause) => {
    error = cause;
  });
  return new Promise((resolve) => {
    const done = (): void => resolve({ bytes: Buffer.concat(chunks), first, last, ...(error && { error }) });
    socket.once('end', done);
    socket.once('close', done);
  });
}

describe('the far-link emulator', () => {
  it('passes bytes intact both ways, over concurrent connections', async () => {
    const { host, link } = await linkTo(await listen(echo));
    const payloads = Array.from({ length: 4 }, () => randomBytes(300 * 1024));
    const echoed = await Promise.all(
      payloads.map(async (payload) => {
        const socket = open(host);
        const received = receive(socket);
        socket.end(payload);
        return (await received).bytes;
      }),
    );
    echoed.forEach((bytes, i) => expect(bytes.equals(payloads[i]!)).toBe(true));
    const total = payloads.length * 300 * 1024;
    expect(link.stats()).toEqual({ up: total, down: total, connections: 4 });
  });

  it('delivers no byte before the handshake and the one-way delay, and answers no sooner than a round trip', async () => {
    let arrived = Number.NaN;
    const target = await listen((socket) =>
      socket.on('data', (chunk) => {
        arrived = performance.now();
        socket.write(chunk);
      }),
    );
    const { host } = await linkTo(target);
    const began = performance.now();
    const socket = open(host);
    socket.write('a');
    const answer = await new Promise<number>((resolve) => socket.once('data', () => resolve(performance.now())));
    expect(arrived - began).toBeGreaterThanOrEqual(CONNECT_DELAY_MS + PROFILE.up.delayMs);
    expect(answer - began).toBeGreaterThanOrEqual(CONNECT_DELAY_MS + PROFILE.up.delayMs + PROFILE.down.delayMs);
    // Once connected, a round trip: no handshake again.
    const again = performance.now();
    socket.write('b');
    await new Promise((resolve) => socket.once('data', resolve));
    expect(performance.now() - again).toBeGreaterThanOrEqual(PROFILE.up.delayMs + PROFILE.down.delayMs);
    socket.destroy();
  });

  it('honours a connect delay of its own', async () => {
    let arrived = Number.NaN;
    const target = await listen((socket) => socket.once('data', () => (arrived = performance.now())));
    const { host } = await linkTo(target, { ...PROFILE, connectDelayMs: 120 });
    const began = performance.now();
    const socket = open(host);
    socket.write('a');
    await expect.poll(() => arrived, { timeout: 2_000, interval: 10 }).toBeGreaterThan(0);
    expect(arrived - began).toBeGreaterThanOrEqual(120 + PROFILE.up.delayMs);
    socket.destroy();
  });

  it('passes a half-close on: the far end still answers after the client has ended', async () => {
    const target = await listen((socket) => {
      const request = receive(socket);
      void request.then(({ bytes }) => socket.end(`got ${bytes}`));
    });
    const { host } = await linkTo(target);
    const socket = open(host);
    const answer = receive(socket);
    socket.end('ping');
    expect((await answer).bytes.toString()).toBe('got ping');
  });

  it('passes a reset on, after the bytes sent before it', async () => {
    const target = await listen((socket) =>
      socket.once('data', () => socket.write('partial', () => setTimeout(() => socket.resetAndDestroy(), 5))),
    );
    const { host } = await linkTo(target);
    const socket = open(host);
    const pending = receive(socket);
    socket.write('go');
    const received = await pending;
    expect(received.bytes.toString()).toBe('partial');
    expect(received.error?.code).toBe('ECONNRESET');
  });

  it("passes the client's reset on to the far end", async () => {
    let far: Promise<Received> | undefined;
    const target = await listen((socket) => {
      far = receive(socket);
      socket.write('hello');
    });
    const { host } = await linkTo(target);
    const socket = open(host);
    await new Promise((resolve) => socket.once('data', resolve));
    socket.resetAndDestroy();
    await expect.poll(() => far, { timeout: 2_000, interval: 10 }).toBeDefined();
    expect((await far!).error?.code).toBe('ECONNRESET');
  });

  it('closes the client when the far end cannot be reached', async () => {
    const target = await listen(() => {});
    await stops.pop()!(); // nothing listens there now
    const { host } = await linkTo(target);
    const began = performance.now();
    const received = await receive(open(host));
    expect(received.bytes.length).toBe(0);
    expect(received.error?.code).toBe('ECONNRESET');
    expect(performance.now() - began).toBeGreaterThanOrEqual(CONNECT_DELAY_MS + PROFILE.down.delayMs);
  });

  it('takes at least bytes / bandwidth, one bandwidth shared by all connections in each direction', async () => {
    const upBytes = 512 * 1024;
    const downBytes = 384 * 1024;
    const received: Array<Promise<Received>> = [];
    const target = await listen((socket) => {
      received.push(receive(socket));
      socket.end(randomBytes(downBytes));
    });
    const { host } = await linkTo(target);
    const began = performance.now();
    const clients = await Promise.all(
      [0, 1].map((): Promise<Received> => {
        const socket = open(host);
        const answer = receive(socket);
        socket.end(randomBytes(upBytes));
        return answer;
      }),
    );
    const far = await Promise.all(received);
    expect(far.map((each) => each.bytes.length)).toEqual([upBytes, upBytes]);
    expect(clients.map((each) => each.bytes.length)).toEqual([downBytes, downBytes]);
    const upDone = Math.max(...far.map((each) => each.last)) - began;
    const downDone = Math.max(...clients.map((each) => each.last)) - began;
    expect(upDone).toBeGreaterThanOrEqual(CONNECT_DELAY_MS + (2 * upBytes) / bytesPerMs(PROFILE.up.bitsPerSecond) + PROFILE.up.delayMs);
    expect(downDone).toBeGreaterThanOrEqual(CONNECT_DELAY_MS + (2 * downBytes) / bytesPerMs(PROFILE.down.bitsPerSecond) + PROFILE.down.delayMs);
  });

  /** Whether a client's socket got rid of a write of 64 MiB within half a second. */
  async function drains(host: string): Promise<boolean> {
    const socket = open(host);
    socket.on('error', () => {});
    socket.write(Buffer.alloc(64 * 1024 * 1024));
    // Without backpressure the link would take it all off the client in a fraction of this.
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('drain', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
    ]);
    socket.destroy();
    return drained;
  }

  it('holds back a sender whose receiver does not read, rather than buffering without bound', async () => {
    const { host, link } = await linkTo(await listen((socket) => socket.pause()), { up: { delayMs: 1, bitsPerSecond: 10e9 }, down: PROFILE.down });
    expect(await drains(host)).toBe(false);
    expect(link.stats().up).toBeLessThan(64 * 1024 * 1024);
  });

  it('holds back a sender faster than the link', async () => {
    const { host } = await linkTo(await listen((socket) => socket.resume()));
    expect(await drains(host)).toBe(false);
  });

  it('runs in a process of its own for the bench', async () => {
    const link = await startLink(PROFILE);
    stops.push(link.stop);
    const host = await link.expose(await listen(echo));
    const payload = randomBytes(64 * 1024);
    const socket = open(host);
    const echoed = receive(socket);
    socket.end(payload);
    expect((await echoed).bytes.equals(payload)).toBe(true);
    expect(await link.stats()).toEqual({ up: payload.length, down: payload.length, connections: 1 });
    expect(link.pid).not.toBe(process.pid);
  });
});
