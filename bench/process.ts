import { spawn } from 'node:child_process';
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
