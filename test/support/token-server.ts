import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RegistryUser } from './registry.js';

const execFileAsync = promisify(execFile);

const TOKEN_LIFETIME_S = 300;

export interface TokenServer {
  realm: string;
  certPath: string;
  readonly requests: number;
  /** The forms of the OAuth2 refresh-token POSTs it answered, refused ones included. */
  readonly refreshes: Array<Record<string, string>>;
  stop(): Promise<void>;
}

interface TokenServerOptions {
  dir: string;
  user: RegistryUser;
  service: string;
  issuer: string;
  /** The identity token it takes in the OAuth2 refresh-token flow, for `user`. */
  refreshToken?: string;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

interface Signer {
  key: KeyObject;
  x5c: string[];
}

async function createSigner(dir: string): Promise<{ signer: Signer; certPath: string }> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-subj', '/CN=ferry-test-token', '-days', '2',
    '-keyout', keyPath, '-out', certPath,
  ]);
  const [keyPem, certPem] = await Promise.all([readFile(keyPath), readFile(certPath)]);
  const signer = { key: createPrivateKey(keyPem), x5c: [new X509Certificate(certPem).raw.toString('base64')] };
  return { signer, certPath };
}

function parseScopes(scopes: string[]): Access[] {
  return scopes
    .flatMap((scope) => scope.split(' '))
    .flatMap((scope) => {
      const [type, name, actions, ...rest] = scope.split(':');
      if (!type || !name || actions === undefined || rest.length > 0) return [];
      return [{ type, name, actions: actions.split(',') }];
    });
}

function basicCredentials(header: string | undefined): RegistryUser | undefined {
  const match = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon < 0) return { username: decoded, password: '' };
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function signJwt(signer: Signer, claims: object): string {
  const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ typ: 'JWT', alg: 'RS256', x5c: signer.x5c })}.${encode(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), signer.key).toString('base64url')}`;
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const { signer, certPath } = await createSigner(options.dir);
  let requests = 0;
  const refreshes: Array<Record<string, string>> = [];

  const accessToken = (subject: string, access: Access[]) => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(signer, {
      iss: options.issuer,
      sub: subject,
      aud: options.service,
      exp: now + TOKEN_LIFETIME_S,
      nbf: now,
      iat: now,
      jti: randomBytes(16).toString('hex'),
      access,
    });
    return { token, issuedAt: new Date(now * 1000).toISOString() };
  };

  /** https://distribution.github.io/distribution/spec/auth/oauth: the refresh-token grant. */
  const refresh = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return sendJson(res, 400, { error: 'invalid_request' });
    const form = await readForm(req);
    refreshes.push(Object.fromEntries(form));
    if (form.get('grant_type') !== 'refresh_token' || !form.get('client_id') || form.get('service') !== options.service) {
      return sendJson(res, 400, { error: 'invalid_request' });
    }
    if (options.refreshToken === undefined || form.get('refresh_token') !== options.refreshToken) {
      return sendJson(res, 401, { error: 'invalid_grant' });
    }
    const scope = form.get('scope') ?? '';
    const { token, issuedAt } = accessToken(options.user.username, parseScopes([scope]));
    sendJson(res, 200, { access_token: token, scope, expires_in: TOKEN_LIFETIME_S, issued_at: issuedAt });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requests += 1;
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token') return sendJson(res, 404, { error: 'not found' });
    if (req.method === 'POST') {
      refresh(req, res).catch(() => sendJson(res, 500, { error: 'server_error' }));
      return;
    }

    const credentials = basicCredentials(req.headers.authorization);
    const { username, password } = options.user;
    if (credentials && (credentials.username !== username || credentials.password !== password)) {
      return sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
    }

    const { token, issuedAt } = accessToken(credentials?.username ?? '', credentials ? parseScopes(url.searchParams.getAll('scope')) : []);
    sendJson(res, 200, {
      token,
      access_token: token,
      expires_in: TOKEN_LIFETIME_S,
      issued_at: issuedAt,
    });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    certPath,
    get requests() {
      return requests;
    },
    refreshes,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
