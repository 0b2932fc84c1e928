// The CLI's one option parser (strict, every command with --help), UsageError for a
// mistake in a command line, and the checks of integer and token-file options.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * A mistake in a command line: the CLI prints it after the command's name
 * with a pointer to the command's help, and exits with code 2.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

/** The values of a command line parsed against `options`, plus `--help`. */
export type ParsedOptions<O extends OptionSpecs> = {
  readonly values: {
    [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : O[K]["multiple"] extends true ? string[] : string;
  } & { readonly help?: boolean };
  readonly positionals: readonly string[];
};

/**
 * Parse the arguments of `celerity <command>` strictly: an unknown option, a
 * missing value or a stray argument is a UsageError naming it. Every command
 * accepts `--help` (and `-h`).
 */
export const parseCommandLine = <O extends OptionSpecs>(
  command: string,
  argv: readonly string[],
  options: O,
  { positionals = false }: { readonly positionals?: boolean } = {},
): ParsedOptions<O> => {
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: positionals,
    });
    return parsed as unknown as ParsedOptions<O>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${message.split(". To specify a positional")[0]} (see celerity ${command} --help)`);
  }
};

/** `raw` as an integer of at least `min`, or a UsageError naming the option. */
export const integerOption = (option: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  const value = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${option} must be ${range}, got '${raw}'`);
  }
  return value;
};

/** `raw` as an integer of at least `min`, or `fallback` when the option was not given; a UsageError naming the option otherwise. */
export const integerOptionOr = (option: string, raw: string | undefined, fallback: number, min = 0): number =>
  raw === undefined ? fallback : integerOption(option, raw, min);

/** The token in the file given to `--token-file` (or `option`; surrounding whitespace trimmed), or a UsageError saying why it cannot be read. */
export const readTokenFile = (file: string, option = "token-file"): string => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    throw new UsageError(
      `--${option}: cannot read ${resolve(file)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
};
