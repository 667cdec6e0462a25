import type { ReferrerSelection, SignatureRequirement } from '../../actors/types.js';
import { signingKey } from '../signatures/cosign.js';
import { InvalidInputError } from './errors.js';

/** RFC 6838's type/subtype (with a +suffix), what an artifact type is. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** Which referrers travel with images; `all` unless said otherwise. */
export const DEFAULT_REFERRERS: ReferrerSelection = 'all';

/** `none`, `all`, or artifact types separated by commas, as the command line writes it. */
export function parseReferrers(text: string, field = 'referrers'): ReferrerSelection {
  const value = text.trim();
  if (value === 'none' || value === 'all') return value;
  return checkReferrers(value.split(',').map((type) => type.trim()), field);
}

/** A selection as the API and ferry.yaml give it: `all`, `none`, or a list of artifact types. */
export function checkReferrers(selection: ReferrerSelection, field = 'referrers'): ReferrerSelection {
  if (selection === 'all' || selection === 'none') return selection;
  if (selection.length === 0) throw new InvalidInputError(field, 'lists no artifact type (say none to copy no referrers)');
  selection.forEach((type, i) => {
    if (!MEDIA_TYPE.test(type)) throw new InvalidInputError(`${field}.${i}`, `${JSON.stringify(type)} is not an artifact type such as application/spdx+json (or all, or none)`);
    if (selection.indexOf(type) !== i) throw new InvalidInputError(`${field}.${i}`, `${JSON.stringify(type)} is listed twice`);
  });
  return [...selection];
}

/** The key must be one ferry can verify with (an ECDSA P-256 public key in PEM), found out before anything is stored or run. */
export function checkSignatureRequirement(requirement: SignatureRequirement, field = 'requireSignature'): SignatureRequirement {
  try {
    signingKey(requirement.key, requirement.source);
  } catch (error) {
    throw new InvalidInputError(field, (error as Error).message);
  }
  return { key: requirement.key, source: requirement.source };
}
