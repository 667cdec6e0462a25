import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { OCI_MEDIA_TYPES } from './images.js';

const execFileAsync = promisify(execFile);

const SEED_CONCURRENCY = 4;
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface Creds {
  username: string;
  password: string;
}

export interface RepositoryRef {
  host: string;
  repository: string;
  creds?: Creds;
}

export interface TagRef extends RepositoryRef {
  tag: string;
}

export interface RawManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export class SkopeoError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`skopeo ${command} failed: ${stderr.trim()}`);
    this.name = 'SkopeoError';
  }
}

function credsArgs(flagPrefix: '' | 'dest-', creds: Creds | undefined): string[] {
  return creds ? [`--${flagPrefix}creds`, `${creds.username}:${creds.password}`] : [`--${flagPrefix}no-creds`];
}

/** `description` names the operation in errors without leaking credentials. */
async function skopeo(description: string, args: string[]): Promise<Buffer> {
  try {
    const { stdout } = await execFileAsync('skopeo', args, { encoding: 'buffer', maxBuffer: MAX_OUTPUT_BYTES });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new SkopeoError(description, stderr);
  }
}

/** A seed the registry answered 500 is pushed again, this many times at most. */
const SEED_ATTEMPTS = 3;

export async function seedTag(
  layoutDir: string,
  tag: string,
  dest: RepositoryRef & { tag?: string },
): Promise<void> {
  const source = `oci:${layoutDir}:${tag}`;
  const target = `docker://${dest.host}/${dest.repository}:${dest.tag ?? tag}`;
  const copy = () =>
    skopeo(`copy ${source} ${target}`, ['--insecure-policy', 'copy', '--all', '--preserve-digests', '--dest-tls-verify=false', ...credsArgs('dest-', dest.creds), source, target]);
  for (let attempt = 1; ; attempt += 1) {
    try {
      await copy();
      return;
    } catch (error) {
      // distribution 2.8 answers 500 now and then when concurrent pushes to one repository
      // share a blob (CI saw "failed to read from destination repository: 500"); pushing again works.
      if (attempt === SEED_ATTEMPTS || !(error instanceof SkopeoError && error.message.includes('500 (Internal Server Error)'))) throw error;
    }
  }
}

export async function seedLayout(layoutDir: string, tags: string[], dest: RepositoryRef): Promise<void> {
  const queue = [...tags];
  const worker = async (): Promise<void> => {
    for (let tag = queue.shift(); tag !== undefined; tag = queue.shift()) {
      await seedTag(layoutDir, tag, dest);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SEED_CONCURRENCY, tags.length) }, worker));
}

export async function rawManifest(ref: TagRef): Promise<RawManifest> {
  const image = `docker://${ref.host}/${ref.repository}:${ref.tag}`;
  const bytes = await skopeo(`inspect --raw ${image}`, [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...credsArgs('', ref.creds),
    image,
  ]);
  const parsed = JSON.parse(bytes.toString()) as { mediaType?: string; manifests?: unknown };
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    mediaType: parsed.mediaType ?? (parsed.manifests ? OCI_MEDIA_TYPES.index : OCI_MEDIA_TYPES.manifest),
    bytes,
  };
}

export async function listTags(ref: RepositoryRef): Promise<string[]> {
  const repository = `docker://${ref.host}/${ref.repository}`;
  try {
    const stdout = await skopeo(`list-tags ${repository}`, [
      'list-tags',
      '--tls-verify=false',
      ...credsArgs('', ref.creds),
      repository,
    ]);
    return (JSON.parse(stdout.toString()) as { Tags: string[] | null }).Tags ?? [];
  } catch (error) {
    if (error instanceof SkopeoError && /NAME_UNKNOWN|name unknown|registry 404/i.test(error.stderr)) return [];
    throw error;
  }
}
