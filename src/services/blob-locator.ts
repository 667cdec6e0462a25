import { setTimeout as sleep } from 'node:timers/promises';
import { isStoreUnavailable } from './store/errors.js';
import type { BlobUploadStore, NodeId } from './store/types.js';

/** An upload announced to other copies; `settle` ends it, with whether the blob is there now. */
export interface AnnouncedUpload {
  settle(uploaded: boolean): void;
}

/** This copy uploads the blob, or another one is: wait for it (its repository, or undefined if it failed). */
export type UploadTurn = { upload: AnnouncedUpload } | { underway: Promise<string | undefined> };

/** Uploads claimed in the store: by this node, for copies on nodes whose heartbeat is younger than `staleAfterMs`. */
export interface SharedUploads {
  uploads: BlobUploadStore;
  node: NodeId;
  staleAfterMs: number;
}

/** Other nodes' uploads, through the store: how long a claim holds, and how often it is renewed and watched. */
const SHARED = { ttlMs: 30_000, renewMs: 10_000, pollMs: 200 } as const;

/**
 * Which repositories of a registry hold a blob, or soon will: a copy mounts a blob it knows
 * there instead of uploading it again, and waits for one that another copy is uploading. Shared
 * by every job of the process; with `shared`, uploads are claimed in the store too, so that
 * copies on other nodes wait for them as well.
 */
export class BlobLocator {
  readonly #known = new Map<string, Map<string, Set<string>>>();
  /** Uploads under way in this process by `registry digest`: they settle with the repository, or undefined if the upload failed. */
  readonly #underway = new Map<string, Promise<string | undefined>>();
  readonly #shared: SharedUploads | undefined;

  constructor(shared?: SharedUploads) {
    this.#shared = shared;
  }

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

  /**
   * Claims the upload of the blob to `repository`, unless another copy (here or on another node)
   * has it under way, or has just put it there: a copy whose HEAD answered before that upload
   * ended must not put it there again (why a second write hurts: `oneBatchAtATime`).
   */
  async claim(registry: string, digest: string, repository: string, signal: AbortSignal): Promise<UploadTurn> {
    if (this.#known.get(registry)?.get(digest)?.has(repository)) return { underway: Promise.resolve(repository) };
    const local = this.#underway.get(`${registry} ${digest}`);
    if (local) return { underway: local };
    if (!this.#shared) return { upload: this.#announce(registry, digest, repository) };
    const { uploads, node, staleAfterMs } = this.#shared;
    let holder;
    try {
      holder = await uploads.claim({ registry, digest, repository, node }, SHARED.ttlMs, staleAfterMs);
    } catch (error) {
      // A database restarting or away must not fail the copy: the claim only spares other
      // nodes an upload, so this one uploads unannounced to them, as its renewal and end do.
      if (!isStoreUnavailable(error)) throw error;
      return { upload: this.#announce(registry, digest, repository) };
    }
    if (holder === undefined) return { upload: this.#announceShared(registry, digest, repository) };
    if (holder.state === 'done') {
      this.add(registry, holder.repository, digest);
      return { underway: Promise.resolve(holder.repository) };
    }
    return { underway: this.#awaitElsewhere(registry, digest, signal) };
  }

  #announce(registry: string, digest: string, repository: string): AnnouncedUpload {
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

  /** Announced here and held in the store, renewed while it runs. */
  #announceShared(registry: string, digest: string, repository: string): AnnouncedUpload {
    const { uploads, node } = this.#shared!;
    const local = this.#announce(registry, digest, repository);
    const renewing = setInterval(() => void uploads.renew({ registry, digest, node }, SHARED.ttlMs).catch(() => {}), SHARED.renewMs);
    renewing.unref();
    return {
      settle: (uploaded) => {
        clearInterval(renewing);
        local.settle(uploaded);
        // Best effort: a claim left behind runs out on its own.
        void uploads.finish({ registry, digest, node }, uploaded, SHARED.ttlMs).catch(() => {});
      },
    };
  }

  /** Another node's upload: its repository once done; undefined once it is given up or runs out. */
  async #awaitElsewhere(registry: string, digest: string, signal: AbortSignal): Promise<string | undefined> {
    const { uploads, staleAfterMs } = this.#shared!;
    while (!signal.aborted) {
      await sleep(SHARED.pollMs, undefined, { signal }).catch(() => {});
      const now = await uploads.find(registry, digest, staleAfterMs).catch(() => undefined);
      if (now?.state === 'uploading') continue;
      if (now?.state === 'done') this.add(registry, now.repository, digest);
      return now?.repository;
    }
    return undefined;
  }
}
