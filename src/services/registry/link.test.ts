import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from './errors.js';
import { nextLink } from './link.js';

const REQUEST = 'https://r.example.com/v2/org/app/tags/list?n=100';

const relationType = fc.constantFrom('next', 'NEXT', 'prev', 'last', 'first', 'nextish', 'https://example.com/rel/next');
const relationTypes = fc.array(relationType, { minLength: 1, maxLength: 3 });
const target = fc.oneof(
  fc.webUrl({ withQueryParameters: true }),
  fc
    .tuple(fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.stringMatching(/^[a-z0-9,._-]{1,10}$/), fc.integer({ min: 1, max: 1000 }))
    .map(([repo, last, n]) => `/v2/${repo}/tags/list?last=${last}&n=${n}`),
);
const generatedLink = fc.record({
  target,
  rels: relationTypes,
  quoted: fc.boolean(),
  extra: fc.constantFrom('', '; title="a, b; c"', '; crossorigin', ';type="text/plain"'),
});
type GeneratedLink = typeof generatedLink extends fc.Arbitrary<infer T> ? T : never;

function render({ target, rels, quoted, extra }: GeneratedLink): string {
  const value = rels.join(' ');
  const rel = quoted || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value) ? `"${value}"` : value;
  return `<${target}>${extra}; rel=${rel}`;
}

function nextOrThrowsRegistryError(header: string): string | undefined {
  try {
    return nextLink(header, REQUEST);
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return undefined;
  }
}

describe('nextLink', () => {
  it.each<[string | undefined, string | undefined]>([
    ['</v2/org/app/tags/list?last=x&n=100>; rel="next"', 'https://r.example.com/v2/org/app/tags/list?last=x&n=100'],
    ['<https://cdn.example.com/page/2>; rel=next', 'https://cdn.example.com/page/2'],
    ['<?last=b>; rel=next', 'https://r.example.com/v2/org/app/tags/list?last=b'],
    ['</a>; rel="prev", </b>; rel="next"', 'https://r.example.com/b'],
    ['</b>; rel="next last"', 'https://r.example.com/b'],
    ['</b>; rel="last  next"', 'https://r.example.com/b'],
    ['</b>; rel=NEXT', 'https://r.example.com/b'],
    ['</b>; title="a, b; rel=prev"; rel=next', 'https://r.example.com/b'],
    ['</v2/x/tags/list?last=a,b&n=1>; rel="next"', 'https://r.example.com/v2/x/tags/list?last=a,b&n=1'],
    ['</b>; crossorigin; rel=next', 'https://r.example.com/b'],
    ['  </a> ;  rel = "next"  ,  ', 'https://r.example.com/a'],
    [', </a>; rel=prev,, </b>; rel=next, </c>; rel=next', 'https://r.example.com/b'],
    ['</b>; REL="next"', 'https://r.example.com/b'],
    ['</b>; rel=prev; rel=next', undefined],
    ['</b>; rel="nextpage"', undefined],
    ['</b>; rel=""', undefined],
    ['</b>', undefined],
    ['</a>; rel="prev"', undefined],
    ['', undefined],
    [' , ', undefined],
    [undefined, undefined],
  ])('resolves %j', (header, expected) => {
    expect(nextLink(header, REQUEST)).toBe(expected);
  });

  it.each([
    ['/v2/x; rel=next', /expected "<URI-reference>" at offset 0/],
    ['</v2/x; rel=next', /expected "<URI-reference>" at offset 0/],
    ['</a> rel=next', /expected "," or ";" at offset 5/],
    ['</a>; rel="next', /expected "," or ";"/],
    ['</a>; rel=next </b>', /expected "," or ";"/],
    ['</a>; =next', /expected "," or ";"/],
    ['</a>; rel=next\n', /expected "," or ";"/],
    ['</a>; type=text/plain; rel=next', /expected "," or ";" at offset 15/],
  ])('rejects malformed %j', (header, reason) => {
    expect(() => nextLink(header, REQUEST)).toThrow(RegistryError);
    expect(() => nextLink(header, REQUEST)).toThrow(reason);
    expect(() => nextLink(header, REQUEST)).toThrow(`invalid Link header ${JSON.stringify(header)}`);
  });

  it.each(['<http://[bad>; rel=next', '<javascript:alert(1)>; rel=next', '<file:///etc/passwd>; rel=next'])(
    'rejects a next target that is not an http(s) URL: %j',
    (header) => {
      expect(() => nextLink(header, REQUEST)).toThrow(/Link header next target .* is not an http\(s\) URL/);
    },
  );

  it('rejects an invalid request URL', () => {
    expect(() => nextLink('</b>; rel=next', '/relative')).toThrow(
      expect.objectContaining({ code: 'PROTOCOL', message: expect.stringContaining('"/relative"') }),
    );
  });

  it('finds the first next link among generated links', () => {
    fc.assert(
      fc.property(fc.array(generatedLink, { maxLength: 4 }), fc.constantFrom(', ', ',', ' ,  '), (links, separator) => {
        const first = links.find(({ rels }) => rels.some((rel) => rel.toLowerCase() === 'next'));
        const expected = first === undefined ? undefined : new URL(first.target, REQUEST).href;
        expect(nextLink(links.map(render).join(separator), REQUEST)).toBe(expected);
      }),
    );
  });

  it('returns an absolute URL that resolves to itself', () => {
    fc.assert(
      fc.property(generatedLink, fc.webUrl(), (link, otherRequest) => {
        const next = nextLink(`${render(link)}, <${link.target}>; rel=next`, REQUEST);
        expect(next).toBeDefined();
        expect(nextLink(`<${next}>; rel=next`, otherRequest)).toBe(next);
      }),
    );
  });

  it('never throws anything but RegistryError', () => {
    const headerLike = fc.string({ unit: fc.constantFrom(...'<>/a:;, ="\\rel=next'), maxLength: 40 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), headerLike), (header) => {
        const next = nextOrThrowsRegistryError(header);
        if (next !== undefined) expect(new URL(next).protocol).toMatch(/^https?:$/);
      }),
    );
  });
});
