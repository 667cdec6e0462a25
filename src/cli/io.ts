/** What a command reads and writes, passed in so tests can run commands in-process. */
export interface CommandIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Resolves when the user asks to stop (SIGINT). */
  interrupted: Promise<void>;
}
