import { readFile } from 'node:fs/promises';
import type { RegistryOptions } from '../services/registry/client.js';
import { parseCredentials, type Login } from '../services/registry/credentials.js';
import { dockerConfigLogin } from '../services/registry/docker-config.js';
import type { RegistryResolver } from '../services/registry/registries.js';

export interface SideOptions {
  registry: string;
  /** `user:pass` from a flag or environment variable. */
  credentials?: string | undefined;
  insecure: boolean;
  caFile?: string | undefined;
  /** Requests per second at most. */
  rate?: number | undefined;
}

/**
 * Options for each registry a command talks to: credentials from the flag, else the
 * environment, else docker's config (its credential helpers, store or `auths`). When source
 * and destination are the same registry, the destination's settings win: they need push as
 * well as pull.
 */
export function registryResolver(sides: SideOptions[]): RegistryResolver {
  return async (registry) => {
    const side = sides.findLast((s) => s.registry === registry);
    const credentials: Login | undefined = side?.credentials
      ? parseCredentials(side.credentials)
      : await dockerConfigLogin(registry);
    const options: RegistryOptions = { registry, insecure: side?.insecure ?? false, userAgent: 'ferry/0.1' };
    if (credentials) options.credentials = credentials;
    if (side?.caFile) options.ca = await readFile(side.caFile, 'utf8');
    if (side?.rate !== undefined) options.requestsPerSecond = side.rate;
    return options;
  };
}
