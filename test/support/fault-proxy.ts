import { Agent, createServer, request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export type Fault =
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { type: 'reset' }
  | { type: 'resetAfterBytes'; bytes: number }
  | { type: 'corrupt' }
  /** Holds the request until `release` settles; a Fault it resolves to is then applied to the request. */
  | { type: 'hold'; release: Promise<void | Fault>; onHeld?: (index: number) => void }
  | { type: 'delay'; ms: number }
  | { type: 'throttle'; bytesPerSecond: number }
  /** Forwards the request and adds these headers to the registry's answer. */
  | { type: 'addHeaders'; headers: Record<string, string> }
  | BudgetFault;

/**
 * A registry that rations requests, as Docker Hub rations pulls: `limit` matching requests per
 * fixed window of `windowSeconds` (the first window opens at the first request), then 429 with
 * Retry-After until the window ends. `free` methods are not counted nor refused (Docker Hub:
 * HEAD). Every answer carries `RateLimit-Limit: <limit>;w=<window>` and `RateLimit-Remaining`
 * as Docker Hub's do, unless `headers` is false (a registry that only refuses).
 */
export interface BudgetFault {
  type: 'budget';
  limit: number;
  windowSeconds: number;
  free?: string[];
  headers?: boolean;
}

export interface FaultRule {
  method?: string;
  /** Tested against the request target: path plus query string. */
  path: RegExp;
  fault: Fault;
  times?: number;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** 0 while pending, or when the connection was reset before a status line was sent. */
  status: number;
  /** The client closed the connection before the response was complete. */
  aborted: boolean;
  /** When it reached the proxy (epoch ms). */
  at: number;
}

/** A request held at the proxy: the client's job is in the phase that sent it until it is released. */
export interface HeldRequest {
  /** Resolves, with the request's index in `requests`, once it is held. */
  arrived: Promise<number>;
  /** Lets it go on to the registry, or applies `fault` to it. */
  release(fault?: Fault): void;
}

export interface FaultProxy {
  host: string;
  url: string;
  addRule(rule: FaultRule): () => void;
  /** Holds the first request matching `rule`. */
  hold(rule: Omit<FaultRule, 'fault' | 'times'>): HeldRequest;
  clearRules(): void;
  requests: ProxiedRequest[];
  /** TCP connections clients have opened to the proxy. */
  readonly connections: number;
  stop(): Promise<void>;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

const HOP_BY_HOP_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'upgrade'];

function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const copy: OutgoingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP_HEADERS) delete copy[name];
  return copy;
}

function flipBytes(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, chunk.map((byte) => byte ^ 0xff));
    },
  });
}

/** Passes bytes on at about `bytesPerSecond`. */
function throttle(bytesPerSecond: number): Transform {
  return new Transform({
    async transform(chunk: Buffer, _encoding, done) {
      await sleep((chunk.length * 1000) / bytesPerSecond);
      done(null, chunk);
    },
  });
}

/** Sends at most `limit` body bytes, then destroys the client connection once they are flushed. */
async function sendTruncated(body: IncomingMessage, res: ServerResponse, limit: number): Promise<void> {
  let sent = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const piece = chunk.subarray(0, limit - sent);
    sent += piece.length;
    await new Promise<void>((resolve, reject) => res.write(piece, (error) => (error ? reject(error) : resolve())));
    if (sent === limit) {
      res.socket?.destroy();
      return;
    }
  }
  res.end();
}

/**
 * The requests that match `path`, `counted` of them per window of a budget's length, from the
 * first (as the proxy's budget windows run): what a rationing registry saw.
 */
export function requestsPerWindow(requests: ProxiedRequest[], path: RegExp, windowSeconds: number, counted: (request: ProxiedRequest) => boolean): number[] {
  const matching = requests.filter((r) => path.test(r.path));
  const start = matching[0]?.at ?? 0;
  const windows: number[] = [];
  for (const request of matching.filter(counted)) {
    const index = Math.floor((request.at - start) / (windowSeconds * 1000));
    windows[index] = (windows[index] ?? 0) + 1;
  }
  return Array.from(windows, (count) => count ?? 0);
}

const DOCKER_HUB_REFUSAL = JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }] });

/** Spends one request of a budget: the headers to answer with, and whether it is refused. */
function budgetKeeper(): (fault: BudgetFault, method: string) => { refused: boolean; headers: Record<string, string> } {
  const windows = new WeakMap<BudgetFault, { start: number; used: number }>();
  return (fault, method) => {
    const now = Date.now();
    const length = fault.windowSeconds * 1000;
    let window = windows.get(fault);
    if (!window) windows.set(fault, (window = { start: now, used: 0 }));
    if (now >= window.start + length) {
      window.start += Math.floor((now - window.start) / length) * length;
      window.used = 0;
    }
    const counted = !(fault.free ?? []).includes(method);
    const refused = counted && window.used >= fault.limit;
    if (counted && !refused) window.used += 1;
    const headers: Record<string, string> = fault.headers === false ? {} : {
      'ratelimit-limit': `${fault.limit};w=${fault.windowSeconds}`,
      'ratelimit-remaining': `${fault.limit - window.used};w=${fault.windowSeconds}`,
    };
    if (refused) headers['retry-after'] = String(Math.ceil((window.start + length - now) / 1000));
    return { refused, headers };
  };
}

export async function startFaultProxy(targetHost: string): Promise<FaultProxy> {
  const target = new URL(`http://${targetHost}`);
  const agent = new Agent({ keepAlive: true, noDelay: true });
  let rules: ActiveRule[] = [];
  const requests: ProxiedRequest[] = [];
  const spend = budgetKeeper();

  const addRule = (rule: FaultRule): (() => void) => {
    const active = { rule, remaining: rule.times ?? Infinity };
    rules.push(active);
    return () => {
      rules = rules.filter((candidate) => candidate !== active);
    };
  };

  const takeFault = (method: string, path: string): Fault | undefined => {
    const active = rules.find(
      ({ rule, remaining }) =>
        remaining > 0 && (!rule.method || rule.method.toUpperCase() === method) && rule.path.test(path),
    );
    if (!active) return undefined;
    active.remaining -= 1;
    return active.rule.fault;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, fault?: Fault): void => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: record.method,
        path: record.path,
        headers: endToEndHeaders(req.headers),
        agent,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? 502;
        res.writeHead(record.status, { ...endToEndHeaders(upstreamRes.headers), ...(fault?.type === 'addHeaders' ? fault.headers : {}) });
        const sending =
          fault?.type === 'resetAfterBytes'
            ? sendTruncated(upstreamRes, res, fault.bytes)
            : fault?.type === 'corrupt'
              ? pipeline(upstreamRes, flipBytes(), res)
              : fault?.type === 'throttle'
                ? pipeline(upstreamRes, throttle(fault.bytesPerSecond), res)
                : pipeline(upstreamRes, res);
        sending.catch(() => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (req.socket.destroyed) return;
      if (res.headersSent) return void res.destroy();
      record.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`fault proxy: ${targetHost} unreachable`);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const record: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0, aborted: false, at: Date.now() };
    requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });

    let fault = takeFault(record.method, record.path);
    while (fault?.type === 'hold') {
      fault.onHeld?.(requests.indexOf(record));
      fault = (await fault.release) ?? undefined;
      if (req.socket.destroyed || record.aborted) return;
    }
    if (fault?.type === 'budget') {
      const { refused, headers } = spend(fault, record.method);
      if (refused) fault = { type: 'status', status: 429, headers: { ...headers, 'content-type': 'application/json' }, body: DOCKER_HUB_REFUSAL };
      else fault = { type: 'addHeaders', headers };
    }
    switch (fault?.type) {
      case 'status':
        req.resume();
        record.status = fault.status;
        res.writeHead(fault.status, fault.headers).end(fault.body);
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'delay':
        await sleep(fault.ms);
        break;
    }
    if (!req.socket.destroyed) forward(req, res, record, fault);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  let connections = 0;
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    host,
    url: `http://${host}`,
    requests,
    get connections() {
      return connections;
    },
    addRule,
    hold(rule) {
      let release!: (fault?: Fault) => void;
      let onHeld!: (index: number) => void;
      const arrived = new Promise<number>((resolve) => (onHeld = resolve));
      addRule({ ...rule, times: 1, fault: { type: 'hold', release: new Promise<void | Fault>((resolve) => (release = resolve)), onHeld } });
      return { arrived, release: (fault) => release(fault) };
    },
    clearRules() {
      rules = [];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
