import { COMMA, HeaderScanner, LIST_SEPARATORS, OWS, QUOTED_STRING, TOKEN, TOKEN_CHAR, unquote } from './header-scanner.js';

export interface Challenge {
  /** Lowercased. */
  scheme: string;
  /** Keys lowercased; values unescaped. */
  params: Record<string, string>;
  /** The credentials blob of a scheme like Negotiate, instead of params. */
  token68?: string;
}

const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/y;
const EQUALS = /[ \t]*=[ \t]*/y;
const NEXT_IS_PARAM = new RegExp(`(?=[ \\t,]*${TOKEN_CHAR}+[ \\t]*=)`, 'y');

export function parseWwwAuthenticate(header: string): Challenge[] {
  const scan = new HeaderScanner('WWW-Authenticate', header);
  const expectListEnd = () => {
    scan.match(OWS);
    if (!scan.atEnd && !scan.match(COMMA)) scan.fail('expected ","');
  };

  const parseParams = (): Record<string, string> => {
    const params = new Map<string, string>();
    do {
      scan.match(LIST_SEPARATORS);
      const name = (scan.match(TOKEN)?.[0] ?? scan.fail('expected a parameter name')).toLowerCase();
      if (!scan.match(EQUALS)) scan.fail(`expected "=" after parameter "${name}"`);
      const value =
        unquote(scan.match(QUOTED_STRING)?.[1]) ??
        scan.match(TOKEN)?.[0] ??
        scan.fail(`expected a token or quoted string for parameter "${name}"`);
      if (params.has(name)) scan.fail(`duplicate parameter "${name}"`);
      params.set(name, value);
      expectListEnd();
    } while (!scan.atEnd && scan.match(NEXT_IS_PARAM));
    // fromEntries, not assignment, so that a parameter named "__proto__" stays a plain key.
    return Object.fromEntries(params);
  };

  const challenges: Challenge[] = [];
  scan.match(LIST_SEPARATORS);
  while (!scan.atEnd) {
    const scheme = (scan.match(TOKEN)?.[0] ?? scan.fail('expected an auth scheme')).toLowerCase();
    const space = scan.match(OWS)?.[0] ?? '';
    if (scan.atEnd || scan.next === ',') {
      challenges.push({ scheme, params: {} });
      expectListEnd();
    } else {
      if (space === '') scan.fail(`expected a space after auth scheme "${scheme}"`);
      const token68 = scan.match(TOKEN68)?.[0];
      if (token68 === undefined) {
        challenges.push({ scheme, params: parseParams() });
      } else {
        challenges.push({ scheme, params: {}, token68 });
        expectListEnd();
      }
    }
    scan.match(LIST_SEPARATORS);
  }
  if (challenges.length === 0) scan.fail('no challenge');
  return challenges;
}
