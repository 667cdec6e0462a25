/**
 * Which repositories of a registry are known to hold a blob, so a copy can mount it
 * instead of uploading it again. Shared by every job of the process.
 */
export class BlobLocator {
  readonly #known = new Map<string, Map<string, Set<string>>>();

  add(registry: string, repository: string, digest: string): void {
    let byDigest = this.#known.get(registry);
    if (!byDigest) this.#known.set(registry, (byDigest = new Map()));
    let repositories = byDigest.get(digest);
    if (!repositories) byDigest.set(digest, (repositories = new Set()));
    repositories.add(repository);
  }

  /** A repository other than `except` known to hold the blob. */
  find(registry: string, digest: string, except: string): string | undefined {
    for (const repository of this.#known.get(registry)?.get(digest) ?? []) {
      if (repository !== except) return repository;
    }
    return undefined;
  }
}
