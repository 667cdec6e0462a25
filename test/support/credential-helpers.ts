import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/** What a helper's `get` answers, as docker-credential-helpers encode it. */
export interface HelperAnswer {
  Username: string;
  Secret: string;
}

export type HelperBehaviour =
  /** Answers for these server URLs; for any other, "credentials not found" as every helper says it. */
  | { logins: Record<string, HelperAnswer> }
  | { exit: number; stdout?: string; stderr?: string }
  /** Never answers, until killed. */
  | { hang: true };

export interface HelperCall {
  args: string[];
  /** What it read on stdin: the server URL. */
  input: string;
  pid: number;
}

export interface CredentialHelper {
  /** The name after `docker-credential-`, as config.json and the registry setting give it. */
  name: string;
  calls(): Promise<HelperCall[]>;
}

/**
 * Writes `docker-credential-<name>` into `dir`, a real program (node, by absolute path) that
 * records each call and behaves as told.
 */
export async function writeCredentialHelper(dir: string, name: string, behaviour: HelperBehaviour): Promise<CredentialHelper> {
  const program = join(dir, `docker-credential-${name}`);
  const callsFile = join(dir, `${name}.calls`);
  await writeFile(callsFile, '');
  await writeFile(program, `#!${process.execPath}
const fs = require('node:fs');
const behaviour = ${JSON.stringify(behaviour)};
const input = fs.readFileSync(0, 'utf8');
fs.appendFileSync(${JSON.stringify(callsFile)}, JSON.stringify({ args: process.argv.slice(2), input, pid: process.pid }) + '\\n');
if (behaviour.hang) {
  setInterval(() => {}, 1000);
} else if (behaviour.logins) {
  const login = behaviour.logins[input];
  if (login) {
    process.stdout.write(JSON.stringify({ ServerURL: input, ...login }));
  } else {
    process.stdout.write('credentials not found in native keychain\\n');
    process.exitCode = 1;
  }
} else {
  process.stdout.write(behaviour.stdout ?? '');
  process.stderr.write(behaviour.stderr ?? '');
  process.exitCode = behaviour.exit;
}
`);
  await chmod(program, 0o755);
  return {
    name,
    calls: async () =>
      (await readFile(callsFile, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as HelperCall),
  };
}

/** PATH with `dir` first, so that programs there are found before any other. */
export function pathWith(dir: string): string {
  return [dir, process.env.PATH ?? ''].join(delimiter);
}

/** A directory for the enclosing suite's helpers, made before its tests and removed after. */
export function suiteHelperDir(label: string): () => string {
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `ferry-${label}-`));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => dir!;
}
