/** A task run by `coalesced`: call it to run the task; `settled` waits for what was asked so far. */
export interface CoalescedTask {
  (): Promise<void>;
  settled(): Promise<void>;
}

/**
 * Runs `task` one at a time: called while a run is under way, it runs once more after that
 * run, however many calls came meanwhile. For work that reads whatever is there when it runs
 * (claim queued jobs, read new changes, announce a change): one more run covers every call.
 */
export function coalesced(task: () => Promise<void>): CoalescedTask {
  let running: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  const run = (): Promise<void> =>
    (running = task().finally(() => {
      running = undefined;
    }));
  const call = (): Promise<void> => {
    if (!running) return run();
    again ??= running.then(() => {
      again = undefined;
      return run();
    });
    return again;
  };
  return Object.assign(call, { settled: async () => void (await (again ?? running)) });
}
