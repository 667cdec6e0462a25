/**
 * A registry or policy setting that breaks a domain rule. `field` is the setting's path inside
 * the registry or policy (`trigger.schedule`, `platforms.1`); each caller says where that
 * registry or policy came from (`body.` in the API, the file and policy name in ferry.yaml).
 */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';

  constructor(
    readonly field: string,
    /** What is wrong, worded to follow the field: `"* * *" is not a cron schedule: …`. */
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}
