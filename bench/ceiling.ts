import { Agent, request } from 'undici';

/**
 * The machine's ceiling for copying blobs: each one a GET from the source streamed into a
 * monolithic upload (POST, then PUT with the digest) on the destination, `concurrency` at a time.
 */
export async function copyBlobsDirect(
  sourceHost: string,
  repository: string,
  digests: string[],
  destinationHost: string,
  destinationRepository: string,
  concurrency: number,
): Promise<void> {
  const dispatcher = new Agent();
  const copy = async (digest: string): Promise<void> => {
    const blob = await request(`http://${sourceHost}/v2/${repository}/blobs/${digest}`, { dispatcher });
    if (blob.statusCode !== 200) throw new Error(`GET ${digest}: ${blob.statusCode}`);
    const upload = await request(`http://${destinationHost}/v2/${destinationRepository}/blobs/uploads/`, { method: 'POST', dispatcher });
    await upload.body.dump();
    const location = upload.headers.location;
    if (upload.statusCode !== 202 || typeof location !== 'string') throw new Error(`POST upload for ${digest}: ${upload.statusCode}`);
    const target = new URL(location, `http://${destinationHost}`);
    target.searchParams.set('digest', digest);
    const put = await request(target, {
      method: 'PUT',
      dispatcher,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.headers['content-length']) },
      body: blob.body,
    });
    await put.body.dump();
    if (put.statusCode !== 201) throw new Error(`PUT ${digest}: ${put.statusCode}`);
  };
  const queue = [...digests];
  const worker = async (): Promise<void> => {
    for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) await copy(digest);
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await dispatcher.close();
  }
}

export async function verifyBlobs(host: string, repository: string, digests: string[]): Promise<void> {
  for (const digest of digests) {
    const response = await request(`http://${host}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`${host}/${repository}: blob ${digest} missing (${response.statusCode})`);
  }
}
