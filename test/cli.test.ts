import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ferry } from './support/ferry.js';

describe('ferry machine', () => {
  for (const name of ['replication', 'batch', 'deletion']) {
    it(`the ${name} diagram in README.md is the one the machine draws (npm run docs updates it)`, async () => {
      const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
      const block = new RegExp(`<!-- machine:${name} -->\\n\`\`\`mermaid\\n([\\s\\S]*?)\`\`\`\\n<!-- /machine:${name} -->`).exec(readme);
      const drawn = await ferry(['machine', '--mermaid', name]);
      expect(drawn.code).toBe(0);
      expect(block?.[1]).toBe(drawn.stdout);
    });
  }

  it('prints the definitions as JSON, with every phase invoking its actor', async () => {
    type Definition = { id: string; states: Record<string, { entry?: Array<{ type: string }>; states?: Record<string, { invoke: Array<{ src: string }>; entry: Array<{ type: string }> }> }> };
    const printed = async (name: string) => {
      const result = await ferry(['machine', '--json', name]);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as Definition;
    };
    const invoked = (definition: Definition) =>
      Object.fromEntries(Object.entries(definition.states.running!.states!).filter(([, s]) => s.invoke.length).map(([k, s]) => [k, s.invoke[0]!.src]));
    const job = await printed('replication');
    expect(job.id).toBe('replication');
    expect(Object.keys(job.states)).toEqual(['pending', 'running', 'retrying', 'finished', 'error', 'stopped']);
    expect(invoked(job)).toEqual({ initialize: 'resolveTags', check: 'checkAccess' });
    expect(job.states.running!.states!.copying!.entry.map((action) => action.type)).toEqual(['startBatches']);
    const batch = await printed('batch');
    expect(Object.keys(batch.states)).toEqual(['running', 'retrying', 'done', 'error']);
    expect(invoked(batch)).toEqual({ pullManifest: 'planBatch', transferBlob: 'copyBlobs', pushManifest: 'pushManifests' });
  });

  it('rejects an unknown machine with exit 2', async () => {
    const result = await ferry(['machine', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown machine "nope"');
  });
});

describe('ferry', () => {
  it('prints usage and exits 2 without a command', async () => {
    const result = await ferry([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('Usage: ferry <command>');
  });

  it('prints the copy options on copy --help', async () => {
    const result = await ferry(['copy', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--platform <list>');
  });

  it('rejects an unknown command with exit 2', async () => {
    const result = await ferry(['teleport']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("ferry: unknown command 'teleport' (see ferry --help)\n");
  });
});

describe('ferry usage', () => {
  it('prints the version of package.json on --version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const result = await ferry(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
  });

  for (const path of ['copy', 'sync', 'serve', 'ls', 'inspect', 'jobs logs', 'executions ls', 'policies add', 'registries add', 'nodes ls', 'machine', 'stately-inspector']) {
    it(`prints the help of ferry ${path} on --help`, async () => {
      const result = await ferry([...path.split(' '), '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: ferry ${path} `));
      expect(result.stdout).toContain('-h, --help');
    });
  }

  const SRC = 'localhost:5000/x';
  const DST = 'localhost:5001/x';
  for (const [what, args, message, env] of [
    ['a missing argument', ['copy', SRC], "missing required argument 'dst' (see ferry copy --help)"],
    ['an extra argument', ['copy', SRC, DST, 'more'], "too many arguments for 'copy'. Expected 2 arguments but got 3. (see ferry copy --help)"],
    ['an unknown option', ['inspect', `${SRC}:1`, '--bogus'], "unknown option '--bogus' (see ferry inspect --help)"],
    ['an option without its value', ['copy', SRC, DST, '--tags'], "option '--tags <glob>' argument missing (see ferry copy --help)"],
    ['a value out of its choices', ['serve', '--log-level', 'loud'], "option '--log-level <level>' argument 'loud' is invalid. Allowed choices are trace, debug, info, warn, error, fatal, silent. (see ferry serve --help)"],
    ['a value that is not a number', ['copy', SRC, DST, '--batch', 'many'], '--batch takes a whole number of at least 1, not "many" (see ferry copy --help)'],
    ['a malformed reference', ['ls', 'Not A Reference!'], 'invalid image reference "Not A Reference!": repository name "Not A Reference!" must be lowercase (see ferry ls --help)'],
    ['malformed --src-creds', ['copy', SRC, DST, '--src-creds', 'robot'], '--src-creds must have the form "username:password" (see ferry copy --help)'],
    ['malformed FERRY_DEST_CREDS', ['copy', SRC, DST], 'FERRY_DEST_CREDS has an empty password for user "robot" (see ferry copy --help)', { FERRY_DEST_CREDS: 'robot:' }],
    ['malformed --creds', ['ls', SRC, '--creds', ':secret'], '--creds has an empty username (see ferry ls --help)'],
    ['a missing required option', ['sync'], "required option '-c, --config <file>' not specified (see ferry sync --help)"],
    ['a group without its command', ['executions'], 'executions needs a command: ls, show, stop, retry (see ferry executions --help)'],
    ['an unknown subcommand', ['registries', 'edit'], "unknown command 'edit' (see ferry registries --help)"],
  ] as const) {
    it(`says ${what} in one line with a pointer to the help, and exits 2`, async () => {
      const result = await ferry([...args], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`ferry: ${message}\n`);
      expect(result.stdout).toBe('');
    });
  }
});
