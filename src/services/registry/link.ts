import { RegistryError } from './errors.js';

interface Link {
  target: string;
  rel: string | undefined;
}

const TARGET = /<([^>]*)>/y;
const PARAM =
  /[ \t]*;[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:[ \t]*=[ \t]*(?:"((?:[^"\\]|\\[\s\S])*)"|([!#$%&'*+\-.^_`|~0-9A-Za-z]+)))?/y;
const OWS = /[ \t]*/y;
const COMMA = /,/y;
// Recipients must accept empty list elements (RFC 9110 §5.6.1).
const LIST_SEPARATORS = /[ \t,]*/y;

function parseLinks(header: string): Link[] {
  let pos = 0;
  const fail = (reason: string): never => {
    throw new RegistryError('INVALID_HEADER', `invalid Link header ${JSON.stringify(header)}: ${reason} at offset ${pos}`);
  };
  const match = (pattern: RegExp): RegExpExecArray | undefined => {
    pattern.lastIndex = pos;
    const found = pattern.exec(header);
    if (found === null) return undefined;
    pos = pattern.lastIndex;
    return found;
  };

  const links: Link[] = [];
  match(LIST_SEPARATORS);
  while (pos < header.length) {
    const target = match(TARGET)?.[1] ?? fail('expected "<URI-reference>"');
    let rel: string | undefined;
    for (let param = match(PARAM); param !== undefined; param = match(PARAM)) {
      const [, name = '', quoted, token] = param;
      // Occurrences of rel after the first are ignored (RFC 8288 §3.3).
      if (name.toLowerCase() === 'rel' && rel === undefined) rel = quoted?.replace(/\\([\s\S])/g, '$1') ?? token ?? '';
    }
    links.push({ target, rel });
    match(OWS);
    if (pos < header.length && !match(COMMA)) fail('expected "," or ";"');
    match(LIST_SEPARATORS);
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
