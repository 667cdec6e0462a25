import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FERRY_CLI, run, seconds } from './process.js';

export interface PeakRss {
  /** VmHWM of the ferry process, as GNU time reports it. */
  bytes: number;
  seconds: number;
}

export async function ferryCopyPeakRss(dir: string, source: string, destination: string): Promise<PeakRss> {
  const report = join(dir, 'peak-rss.txt');
  const took = await seconds(() => run('/usr/bin/time', ['-o', report, '-f', '%M', process.execPath, FERRY_CLI, 'copy', source, destination]));
  const kib = Number((await readFile(report, 'utf8')).trim());
  if (!Number.isFinite(kib) || kib <= 0) throw new Error(`/usr/bin/time reported ${JSON.stringify(await readFile(report, 'utf8'))}`);
  return { bytes: kib * 1024, seconds: took };
}
