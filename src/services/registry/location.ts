import { RegistryError } from './errors.js';

export function resolveLocation(location: string | undefined, requestUrl: string): URL {
  // An empty Location would resolve to the request URL itself.
  if (location === undefined || location.trim() === '') {
    throw new RegistryError('PROTOCOL', `response to ${requestUrl} has no Location header`);
  }
  if (!URL.canParse(requestUrl)) {
    throw new RegistryError('PROTOCOL', `cannot resolve Location against invalid request URL ${JSON.stringify(requestUrl)}`);
  }
  const url = URL.parse(location, requestUrl);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new RegistryError('PROTOCOL', `Location ${JSON.stringify(location)} from ${requestUrl} is not an http(s) URL`);
  }
  return url;
}

/**
 * Existing pairs are kept byte for byte rather than re-serialised through URLSearchParams, which would
 * re-encode them: upload URLs may carry signed parameters (distribution's `_state`, presigned storage URLs).
 */
export function withQuery(url: URL, params: Record<string, string>): URL {
  const replaced = new Set(Object.keys(params));
  const kept = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && !replaced.has(queryName(pair)));
  const added = Object.entries(params).map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  const result = new URL(url);
  result.search = [...kept, ...added].join('&');
  return result;
}

function queryName(pair: string): string {
  // The leading '&' stops URLSearchParams from stripping a '?' that begins the name.
  return [...new URLSearchParams(`&${pair}`).keys()][0] ?? '';
}
