import { cpuSeconds } from './process.js';
import type { Round } from './report.js';

export interface Arm {
  name: string;
  copy(round: number): Promise<unknown>;
  /** After the timed copy: throws if it left something out, so a broken copy cannot look fast. */
  verify(round: number): Promise<void>;
}

/** Where CPU time is spent: the registries' processes, and the client (the bench process, its commands and `ferry serve`). */
export interface CpuAccounts {
  registries: number[];
  clients: () => Array<number | 'self'>;
}

/**
 * Round 0 is an untimed warm-up, then `rounds` timed rounds, each running every arm once in
 * an order rotated by one per round (A B, B A, ...): no arm always meets the registries cold.
 */
export async function runScenario(scenario: string, arms: Arm[], rounds: number, accounts: CpuAccounts): Promise<Round[]> {
  const results: Round[] = [];
  const total = (pids: Array<number | 'self'>): number => pids.reduce<number>((sum, pid) => sum + cpuSeconds(pid), 0);
  for (let round = 0; round <= rounds; round++) {
    const order = arms.map((_, i) => arms[(i + round) % arms.length]!);
    const times: Record<string, number> = {};
    const cpu: Round['cpu'] = {};
    for (const arm of order) {
      const clients = accounts.clients();
      const before = { registries: total(accounts.registries), client: total(clients), wall: performance.now() };
      await arm.copy(round);
      times[arm.name] = (performance.now() - before.wall) / 1000;
      cpu[arm.name] = { registries: total(accounts.registries) - before.registries, client: total(clients) - before.client };
      await arm.verify(round);
    }
    const { ferry, skopeo } = times;
    const ratio = ferry !== undefined && skopeo !== undefined ? ferry / skopeo : undefined;
    const line = order.map((arm) => `${arm.name} ${times[arm.name]!.toFixed(2)} s`).join(', ');
    console.log(`${scenario} ${round === 0 ? 'warm-up' : `round ${round}`}: ${line}${ratio === undefined ? '' : `; ferry/skopeo ${ratio.toFixed(2)}`}`);
    if (round > 0) results.push({ round, order: order.map((arm) => arm.name), seconds: times, cpu, ...(ratio !== undefined && { ferryOverSkopeo: ratio }) });
  }
  return results;
}
