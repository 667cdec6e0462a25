import type { Action, Scope } from './auth.js';
import type { RegistryClient } from './client.js';

/** A repository on one registry, with the access ferry needs there (pull, or pull and push). */
export class Repository {
  readonly client: RegistryClient;
  readonly name: string;
  readonly scopes: Scope[];

  constructor(client: RegistryClient, name: string, actions: Action[]) {
    this.client = client;
    this.name = name;
    this.scopes = [{ repository: name, actions }];
  }

  /** `registry/name`, or `registry/name:tag` / `registry/name@digest` for error messages. */
  ref(reference?: string): string {
    const base = `${this.client.registry}/${this.name}`;
    if (reference === undefined) return base;
    return reference.includes(':') ? `${base}@${reference}` : `${base}:${reference}`;
  }

  path(resource: string): string {
    return `/v2/${this.name}/${resource}`;
  }
}
