import { isDigest } from './digest.js';
import { RegistryError } from './errors.js';

export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_LEGACY = 'index.docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const OFFICIAL_NAMESPACE = 'library/';
const NAME_MAX_LENGTH = 255;

const DOMAIN_COMPONENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const VERIFIABLE_ALGORITHM = /^sha(?:256|512):/;
const LOOPBACK = /^(?:localhost|127(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}|\[::1\])(?::\d+)?$/i;

export function parseReference(input: string): Reference {
  const fail = (reason: string): never => {
    throw new RegistryError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${reason}`);
  };

  const at = input.indexOf('@');
  const nameAndTag = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : input.slice(at + 1);
  const tagColon = nameAndTag.indexOf(':', nameAndTag.lastIndexOf('/') + 1);
  const name = tagColon === -1 ? nameAndTag : nameAndTag.slice(0, tagColon);
  const tag = tagColon === -1 ? undefined : nameAndTag.slice(tagColon + 1);

  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const hasDomain = first.includes('.') || first.includes(':') || first === 'localhost';
  const domain = hasDomain ? first : DOCKER_HUB;
  const path = hasDomain ? name.slice(slash + 1) : name;

  // The grammar accepts ports and IPv6 literals no URL can hold; reject them here, not when a request is built.
  if (!DOMAIN.test(domain) || !URL.canParse(`https://${domain}/`)) fail(`invalid registry ${JSON.stringify(domain)}`);
  if (path === '') fail('missing repository name');
  if (path !== path.toLowerCase()) fail(`repository name ${JSON.stringify(path)} must be lowercase`);
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) fail(`invalid path component ${JSON.stringify(component)}`);
  }

  const registry = domain === DOCKER_HUB_LEGACY ? DOCKER_HUB : domain;
  const repository = registry === DOCKER_HUB && !path.includes('/') ? OFFICIAL_NAMESPACE + path : path;
  if (registry.length + 1 + repository.length > NAME_MAX_LENGTH) {
    fail(`name ${JSON.stringify(`${registry}/${repository}`)} is longer than ${NAME_MAX_LENGTH} characters`);
  }
  if (tag !== undefined && !TAG.test(tag)) fail(`invalid tag ${JSON.stringify(tag)}`);
  if (digest !== undefined && !isValidDigest(digest)) fail(`invalid digest ${JSON.stringify(digest)}`);

  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

function isValidDigest(digest: string): boolean {
  // Algorithms ferry can verify must have their exact length; any other follows the OCI grammar.
  return VERIFIABLE_ALGORITHM.test(digest) ? isDigest(digest) : DIGEST.test(digest);
}

export function formatReference(ref: Reference): string {
  const tag = ref.tag === undefined ? '' : `:${ref.tag}`;
  const digest = ref.digest === undefined ? '' : `@${ref.digest}`;
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

export function isLoopbackRegistry(registry: string): boolean {
  return LOOPBACK.test(registry);
}
