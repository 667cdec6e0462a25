import { RegistryError } from './errors.js';

export interface Challenge {
  /** Lowercased. */
  scheme: string;
  /** Keys lowercased; values unescaped. */
  params: Record<string, string>;
  /** The credentials blob of a scheme like Negotiate, instead of params. */
  token68?: string;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/y;
const QUOTED_STRING = /"((?:[^"\\]|\\[\s\S])*)"/y;
const OWS = /[ \t]*/y;
const EQUALS = /[ \t]*=[ \t]*/y;
const COMMA = /,/y;
// Recipients must accept empty list elements (RFC 9110 §5.6.1).
const LIST_SEPARATORS = /[ \t,]*/y;
const NEXT_IS_PARAM = /(?=[ \t,]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=)/y;

function unquote(quoted: string | undefined): string | undefined {
  return quoted?.replace(/\\([\s\S])/g, '$1');
}

export function parseWwwAuthenticate(header: string): Challenge[] {
  let pos = 0;
  const fail = (reason: string): never => {
    throw new RegistryError('INVALID_HEADER', `invalid WWW-Authenticate header ${JSON.stringify(header)}: ${reason}`);
  };
  const match = (pattern: RegExp): RegExpExecArray | undefined => {
    pattern.lastIndex = pos;
    const found = pattern.exec(header);
    if (found === null) return undefined;
    pos = pattern.lastIndex;
    return found;
  };
  const atEnd = () => pos === header.length;
  const expectListEnd = () => {
    match(OWS);
    if (!atEnd() && !match(COMMA)) fail(`expected "," at offset ${pos}`);
  };

  const parseParams = (): Record<string, string> => {
    const params = new Map<string, string>();
    do {
      match(LIST_SEPARATORS);
      const name = (match(TOKEN)?.[0] ?? fail(`expected a parameter name at offset ${pos}`)).toLowerCase();
      if (!match(EQUALS)) fail(`expected "=" after parameter "${name}" at offset ${pos}`);
      const value =
        unquote(match(QUOTED_STRING)?.[1]) ??
        match(TOKEN)?.[0] ??
        fail(`expected a token or quoted string for parameter "${name}" at offset ${pos}`);
      if (params.has(name)) fail(`duplicate parameter "${name}"`);
      params.set(name, value);
      expectListEnd();
    } while (!atEnd() && match(NEXT_IS_PARAM));
    // fromEntries, not assignment, so that a parameter named "__proto__" stays a plain key.
    return Object.fromEntries(params);
  };

  const challenges: Challenge[] = [];
  match(LIST_SEPARATORS);
  while (!atEnd()) {
    const scheme = (match(TOKEN)?.[0] ?? fail(`expected an auth scheme at offset ${pos}`)).toLowerCase();
    const space = match(OWS)?.[0] ?? '';
    if (atEnd() || header[pos] === ',') {
      challenges.push({ scheme, params: {} });
      expectListEnd();
    } else {
      if (space === '') fail(`expected a space after auth scheme "${scheme}" at offset ${pos}`);
      const token68 = match(TOKEN68)?.[0];
      if (token68 === undefined) {
        challenges.push({ scheme, params: parseParams() });
      } else {
        challenges.push({ scheme, params: {}, token68 });
        expectListEnd();
      }
    }
    match(LIST_SEPARATORS);
  }
  if (challenges.length === 0) fail('no challenge');
  return challenges;
}
