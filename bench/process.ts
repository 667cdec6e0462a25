import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';

const OUTPUT_TAIL_BYTES = 16 * 1024;

export const FERRY_CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;

/** Keeps the last bytes a child writes, for error messages. */
export function outputTail(child: ChildProcess): () => string {
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return () => output;
}

/** Runs a command to its end; throws with the tail of its output unless it exits 0. */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const output = outputTail(child);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output()}`);
  return output();
}

/** Wall-clock seconds `work` takes. */
export async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

/** Linux's USER_HZ: /proc counts CPU time in these. */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used, from /proc; for `self`, with the children
 * it has waited for (the ferry and skopeo commands the bench runs).
 */
export function cpuSeconds(pid: number | 'self'): number {
  // The command name, in parentheses, may hold spaces: fields are counted after it.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').map(Number);
  const [utime, stime, cutime, cstime] = fields.slice(11, 15) as [number, number, number, number];
  return (utime + stime + (pid === 'self' ? cutime + cstime : 0)) / TICKS_PER_SECOND;
}
