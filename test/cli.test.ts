import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ferry } from './support/ferry.js';

describe('ferry machine', () => {
  for (const name of ['replication', 'deletion']) {
    it(`the ${name} diagram in README.md is the one the machine draws (npm run docs updates it)`, async () => {
      const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
      const block = new RegExp(`<!-- machine:${name} -->\\n\`\`\`mermaid\\n([\\s\\S]*?)\`\`\`\\n<!-- /machine:${name} -->`).exec(readme);
      const drawn = await ferry(['machine', '--mermaid', name]);
      expect(drawn.code).toBe(0);
      expect(block?.[1]).toBe(drawn.stdout);
    });
  }

  it('prints the definition as JSON, with every phase invoking its actor', async () => {
    const result = await ferry(['machine', '--json']);
    expect(result.code).toBe(0);
    const definition = JSON.parse(result.stdout) as { id: string; states: Record<string, { states?: Record<string, { invoke: Array<{ src: string }> }> }> };
    expect(definition.id).toBe('replication');
    expect(Object.keys(definition.states)).toEqual(['pending', 'running', 'retrying', 'finished', 'error', 'stopped']);
    const phases = definition.states.running!.states!;
    expect(Object.fromEntries(Object.entries(phases).filter(([, s]) => s.invoke.length).map(([k, s]) => [k, s.invoke[0]!.src]))).toEqual({
      initialize: 'resolveTags',
      check: 'checkAccess',
      pullManifest: 'planBatch',
      transferBlob: 'copyBlobs',
      pushManifest: 'pushManifests',
    });
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
    expect(result.stdout).toContain('--platform LIST');
  });

  it('rejects an unknown command with exit 2', async () => {
    const result = await ferry(['teleport']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "teleport"');
  });
});
