/** Longest value text an event carries; longer ones are cut, ending with "…". */
export const MAX_REPR = 256;

/**
 * A short readable text of a value for an event (`args`, `result`), as
 * Celery sends reprs: JSON where it can be, never a throw, at most `max`
 * characters.
 *
 * @example
 * repr([2, 2]); // "[2,2]"
 */
export const repr = (value: unknown, max = MAX_REPR): string => {
  let text: string;
  if (value === undefined) text = "undefined";
  else if (typeof value === "string") text = JSON.stringify(value);
  else if (typeof value === "number" || typeof value === "boolean" || value === null) text = String(value);
  else {
    try {
      text =
        JSON.stringify(value, (_key, item: unknown) =>
          typeof item === "bigint" ? `${item}n` : item instanceof Uint8Array ? `<${item.byteLength} bytes>` : item,
        ) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
};

/** `Name('message')`, the form of Celery's exception repr. */
export const exceptionRepr = (name: string, message: string): string => `${name}(${JSON.stringify(message)})`;

/** An epoch-ms time as ISO 8601, or null. */
export const isoOrNull = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();
