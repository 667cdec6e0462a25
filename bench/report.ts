import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Round {
  round: number;
  /** The order the arms ran in this round. */
  order: string[];
  seconds: Record<string, number>;
  /** CPU seconds each arm cost the registries and the client while it ran. */
  cpu: Record<string, { registries: number; client: number }>;
  /** When both ran. */
  ferryOverSkopeo?: number;
}

export interface Row {
  scenario: string;
  ferry: number;
  unit: string;
  reference?: { name: string; value: number };
  /** ferry / reference, when the goal is about the ratio. */
  ratio?: number;
  goal?: { max: number; of: 'ratio' | 'value' };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function medianOf(rounds: Round[], arm: string): number {
  return median(rounds.map((round) => round.seconds[arm]!));
}

/** The median CPU seconds an arm cost the registries and the client. */
export function medianCpu(rounds: Round[], arm: string): { registries: number; client: number } {
  return {
    registries: median(rounds.map((round) => round.cpu[arm]!.registries)),
    client: median(rounds.map((round) => round.cpu[arm]!.client)),
  };
}

/** A row comparing ferry's `value` with a reference's (another arm, or a floor); the goal, if any, is on ferry / reference. */
export function ratioRow(scenario: string, value: number, unit: string, reference: { name: string; value: number }, maxRatio?: number): Row {
  return { scenario, ferry: value, unit, reference, ratio: value / reference.value, ...(maxRatio !== undefined && { goal: { max: maxRatio, of: 'ratio' } }) };
}

/** A row comparing two arms' median times. */
export function timeRow(scenario: string, rounds: Round[], arm: string, reference: string, maxRatio?: number): Row {
  return ratioRow(scenario, medianOf(rounds, arm), 's', { name: reference, value: medianOf(rounds, reference) }, maxRatio);
}

export function met(row: Row): boolean | undefined {
  if (!row.goal) return undefined;
  return (row.goal.of === 'ratio' ? row.ratio! : row.ferry) <= row.goal.max;
}

export function formatTable(rows: Row[]): string {
  const number = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(2));
  const cells = [
    ['scenario', 'ferry (median)', 'compared with', 'ratio', 'goal', 'met?'],
    ...rows.map((row) => {
      const goal = row.goal ? (row.goal.of === 'ratio' ? `<= ${row.goal.max} x ${row.reference!.name}` : `<= ${row.goal.max} ${row.unit}`) : '(info)';
      const ok = met(row);
      return [
        row.scenario,
        `${number(row.ferry)} ${row.unit}`,
        row.reference ? `${row.reference.name} ${number(row.reference.value)} ${row.unit}` : '-',
        row.ratio === undefined ? '-' : row.ratio.toFixed(2),
        goal,
        ok === undefined ? '-' : ok ? 'yes' : 'NO',
      ];
    }),
  ];
  const widths = cells[0]!.map((_, column) => Math.max(...cells.map((line) => line[column]!.length)));
  return cells.map((line) => line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/**
 * Where each arm's time goes, medians over the rounds: wall time, CPU seconds of the two
 * registries and of the client, and the floor those CPU seconds set on the machine's cores.
 */
export function formatCpuTable(scenarios: Record<string, Round[]>, cores: number): string {
  const cells = [['scenario', 'arm', 'wall', 'registries CPU', 'client CPU', `floor (CPU / ${cores} cores)`]];
  for (const [scenario, rounds] of Object.entries(scenarios)) {
    for (const arm of Object.keys(rounds[0]?.cpu ?? {})) {
      const { registries, client } = medianCpu(rounds, arm);
      cells.push([scenario, arm, `${medianOf(rounds, arm).toFixed(2)} s`, `${registries.toFixed(2)} s`, `${client.toFixed(2)} s`, `${((registries + client) / cores).toFixed(2)} s`]);
    }
  }
  const widths = cells[0]!.map((_, column) => Math.max(...cells.map((line) => line[column]!.length)));
  return cells.map((line) => line.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

async function version(command: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(command, args);
  return stdout.trim();
}

export async function machineFacts(): Promise<object> {
  const [skopeo, dockerRegistry, commit, dirty] = await Promise.all([
    version('skopeo', ['--version']),
    version('docker-registry', ['--version']),
    version('git', ['rev-parse', 'HEAD']),
    version('git', ['status', '--porcelain', '--', 'src']),
  ]);
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    skopeo,
    dockerRegistry,
    ferryCommit: commit,
    ferrySrcModified: dirty !== '',
  };
}

/** Writes `results` to bench/results/<date>.json; returns the path. */
export async function writeResults(date: Date, results: object): Promise<string> {
  const dir = join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${date.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
  await writeFile(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}
