import { RegistryError } from './errors.js';
import { COMMA, HeaderScanner, LIST_SEPARATORS, OWS, QUOTED_STRING, TOKEN_CHAR, unquote } from './header-scanner.js';

interface Link {
  target: string;
  rel: string | undefined;
}

const TARGET = /<([^>]*)>/y;
const PARAM = new RegExp(`[ \\t]*;[ \\t]*(${TOKEN_CHAR}+)(?:[ \\t]*=[ \\t]*(?:${QUOTED_STRING.source}|(${TOKEN_CHAR}+)))?`, 'y');

function parseLinks(header: string): Link[] {
  const scan = new HeaderScanner('Link', header);
  const links: Link[] = [];
  scan.match(LIST_SEPARATORS);
  while (!scan.atEnd) {
    const target = scan.match(TARGET)?.[1] ?? scan.fail('expected "<URI-reference>"');
    let rel: string | undefined;
    for (let param = scan.match(PARAM); param !== undefined; param = scan.match(PARAM)) {
      const [, name = '', quoted, token] = param;
      // Occurrences of rel after the first are ignored (RFC 8288 §3.3).
      if (name.toLowerCase() === 'rel' && rel === undefined) rel = unquote(quoted) ?? token ?? '';
    }
    links.push({ target, rel });
    scan.match(OWS);
    if (!scan.atEnd && !scan.match(COMMA)) scan.fail('expected "," or ";"');
    scan.match(LIST_SEPARATORS);
  }
  return links;
}

export function nextLink(header: string | undefined, requestUrl: string): string | undefined {
  if (header === undefined) return undefined;
  const next = parseLinks(header).find(({ rel }) => rel?.toLowerCase().split(/[ \t]+/).includes('next'));
  if (next === undefined) return undefined;
  if (!URL.canParse(requestUrl)) {
    throw new RegistryError('PROTOCOL', `cannot resolve Link header against invalid request URL ${JSON.stringify(requestUrl)}`);
  }
  const url = URL.parse(next.target, requestUrl);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new RegistryError('INVALID_HEADER', `Link header next target ${JSON.stringify(next.target)} is not an http(s) URL`);
  }
  return url.href;
}
