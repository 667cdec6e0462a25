/** What the checks of registries and policies share. */
import { InvalidInputError } from './errors.js';

const NAME_MAX_LENGTH = 200;

/** One check per setting: the value as given (never undefined), back as it is stored. */
export type FieldChecks<Given, Stored> = { [K in keyof Stored & keyof Given]-?: (value: Exclude<Given[K], undefined>) => Stored[K] };

/**
 * The settings given, each checked; settings left out (or undefined) stay out, so the result
 * serves as a patch. Keys without a check are dropped: they are not settings.
 */
export function checkGiven<Given extends object, Stored>(input: Given, checks: FieldChecks<Given, Stored>): Partial<Stored> {
  const checked: Partial<Stored> = {};
  for (const key of Object.keys(checks) as Array<keyof Stored & keyof Given>) {
    const value = input[key];
    if (value !== undefined) checked[key] = checks[key](value as Exclude<Given[typeof key], undefined>);
  }
  return checked;
}

/** What a new registry or policy cannot leave out. */
export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new InvalidInputError(field, 'is required');
  return value;
}

/** Names are what people (and ferry.yaml) refer to registries and policies by. */
export function checkName(name: string): string {
  if (name.trim() === '') throw new InvalidInputError('name', 'must not be empty');
  if (name.length > NAME_MAX_LENGTH) throw new InvalidInputError('name', `is ${name.length} characters long, more than ${NAME_MAX_LENGTH}`);
  return name;
}
