// Rewrites the Mermaid diagrams in README.md from the built machines (npm run docs).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

let readme = readFileSync('README.md', 'utf8');
for (const name of ['replication', 'batch', 'deletion']) {
  const mermaid = execFileSync(process.execPath, ['dist/cli/main.js', 'machine', '--mermaid', name], { encoding: 'utf8' });
  const block = new RegExp(`(<!-- machine:${name} -->\\n)[\\s\\S]*?(<!-- /machine:${name} -->)`);
  if (!block.test(readme)) throw new Error(`README.md has no <!-- machine:${name} --> block`);
  readme = readme.replace(block, `$1\`\`\`mermaid\n${mermaid}\`\`\`\n$2`);
}
writeFileSync('README.md', readme);
