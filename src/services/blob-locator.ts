/** An upload announced to other copies; `settle` ends it, with whether the blob is there now. */
export interface AnnouncedUpload {
  settle(uploaded: boolean): void;
}

/**
 * Which repositories of a registry hold a blob, or soon will: a copy mounts a blob it knows
 * there instead of uploading it again, and waits for one that another job is uploading.
 * Shared by every job of the process.
 */
export class BlobLocator {
  readonly #known = new Map<string, Map<string, Set<string>>>();
  /** Uploads under way by `registry digest`: they settle with the repository, or undefined if the upload failed. */
  readonly #underway = new Map<string, Promise<string | undefined>>();

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

  /** The upload of the blob that another copy has under way, if any. */
  underway(registry: string, digest: string): Promise<string | undefined> | undefined {
    return this.#underway.get(`${registry} ${digest}`);
  }

  /** Announces an upload of the blob to `repository`: copies to other repositories wait for it and mount. */
  uploading(registry: string, digest: string, repository: string): AnnouncedUpload {
    const key = `${registry} ${digest}`;
    let resolve!: (repository: string | undefined) => void;
    const upload = new Promise<string | undefined>((r) => (resolve = r));
    this.#underway.set(key, upload);
    return {
      settle: (uploaded) => {
        if (this.#underway.get(key) === upload) this.#underway.delete(key);
        if (uploaded) this.add(registry, repository, digest);
        resolve(uploaded ? repository : undefined);
      },
    };
  }
}
