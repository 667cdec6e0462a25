import { RegistryError } from './errors.js';

/** RFC 9110 tchar: what a token (a scheme, a parameter name, an unquoted value) is made of. */
export const TOKEN_CHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
export const TOKEN = new RegExp(`${TOKEN_CHAR}+`, 'y');
export const QUOTED_STRING = /"((?:[^"\\]|\\[\s\S])*)"/y;
export const OWS = /[ \t]*/y;
export const COMMA = /,/y;
// Recipients must accept empty list elements (RFC 9110 §5.6.1).
export const LIST_SEPARATORS = /[ \t,]*/y;

export function unquote(quoted: string | undefined): string | undefined {
  return quoted?.replace(/\\([\s\S])/g, '$1');
}

/** Walks a header value with sticky regular expressions; every failure names the header and offset. */
export class HeaderScanner {
  readonly #header: string;
  readonly #name: string;
  pos = 0;

  constructor(name: string, header: string) {
    this.#name = name;
    this.#header = header;
  }

  get atEnd(): boolean {
    return this.pos === this.#header.length;
  }

  get next(): string | undefined {
    return this.#header[this.pos];
  }

  match(pattern: RegExp): RegExpExecArray | undefined {
    pattern.lastIndex = this.pos;
    const found = pattern.exec(this.#header);
    if (found === null) return undefined;
    this.pos = pattern.lastIndex;
    return found;
  }

  fail(reason: string): never {
    throw new RegistryError('INVALID_HEADER', `invalid ${this.#name} header ${JSON.stringify(this.#header)}: ${reason} at offset ${this.pos}`);
  }
}
