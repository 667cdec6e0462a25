import { RegistryError } from '../registry/errors.js';
import { parseReference } from '../registry/reference.js';
import type { NamespaceRewrite } from '../store/types.js';

/**
 * Harbor's flattening: the source repository minus its first `flatten` components (-1: all
 * but the last; never the last), under `namespace` when one is set.
 * `('a/b/c', { namespace: 'mirror', flatten: 1 })` → `mirror/b/c`.
 */
export function rewriteRepository(path: string, rewrite: NamespaceRewrite): string {
  const { namespace, flatten } = rewrite;
  if (!isRepositoryPath(path)) throw new RegistryError('INVALID_REFERENCE', `rewrite: source ${JSON.stringify(path)} is not a repository name`);
  // Policies are checked when written; this guards those stored before the rule existed.
  const unusable = rewriteProblem(rewrite);
  if (unusable) throw new RegistryError('INVALID_CONFIG', `rewrite of ${path}: ${unusable.field} ${unusable.problem}`);
  const components = path.split('/');
  const dropped = flatten === -1 ? components.length - 1 : Math.min(flatten, components.length - 1);
  const kept = components.slice(dropped).join('/');
  return namespace === null ? kept : `${namespace}/${kept}`;
}

/** Why a rewrite cannot apply to any repository (the setting and the reason), or undefined when it can. */
export function rewriteProblem({ namespace, flatten }: NamespaceRewrite): { field: keyof NamespaceRewrite; problem: string } | undefined {
  if (namespace !== null && !isRepositoryPath(namespace)) {
    return {
      field: 'namespace',
      problem: `${JSON.stringify(namespace)} is not a repository path (lowercase letters and digits, joined by ".", "_", "__", "-" or "/")`,
    };
  }
  if (!Number.isSafeInteger(flatten) || flatten < -1) {
    return { field: 'flatten', problem: `${flatten} is not -1 (keep the last component), 0 (keep all) or a positive integer` };
  }
  return undefined;
}

/** Path components per the distribution grammar, and nothing else (no tag, no digest). */
function isRepositoryPath(text: string): boolean {
  try {
    return parseReference(`localhost/${text}`).repository === text;
  } catch (error) {
    if (error instanceof RegistryError) return false;
    throw error;
  }
}
