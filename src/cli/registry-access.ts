import { parseReference, type Reference } from '../services/registry/reference.js';
import { Registries } from '../services/registry/registries.js';
import { Repository } from '../services/registry/repository.js';
import type { CommandIO } from './io.js';
import { credentialsOption, registryResolver } from './registry-options.js';

/** The options of `ferry ls` and `ferry inspect`: copy's, for the one registry they read. */
export interface ReadOptions {
  creds?: string;
  insecure?: boolean;
  ca?: string;
}

/** Reads a repository with pull access, then lets its connections go. */
export async function withRepository<T>(input: string, options: ReadOptions, io: CommandIO, use: (repo: Repository, reference: Reference) => Promise<T>): Promise<T> {
  const reference = parseReference(input);
  const registries = new Registries(
    registryResolver([{ registry: reference.registry, ...credentialsOption(options.creds, '--creds', io.env, 'FERRY_CREDS'), insecure: options.insecure ?? false, caFile: options.ca }]),
  );
  try {
    return await use(new Repository(await registries.get(reference.registry), reference.repository, ['pull']), reference);
  } finally {
    await registries.close();
  }
}
