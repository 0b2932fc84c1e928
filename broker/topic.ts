/**
 * AMQP topic matching: `pattern` and `routingKey` are words separated by ".";
 * in the pattern `*` stands for exactly one word and `#` for zero or more
 * words. Anything else must match word for word (a `*` inside a word is
 * literal).
 *
 * @example
 * topicMatches("orders.*.created", "orders.eu.created"); // true
 * topicMatches("orders.#", "orders");                    // true
 * topicMatches("*.created", "orders.eu.created");        // false
 */
export const topicMatches = (pattern: string, routingKey: string): boolean =>
  matchWords(pattern.split("."), routingKey.split("."));

/**
 * Word-level glob with backtracking to the most recent `#`: linear in the
 * common case, and never worse than pattern length times key length.
 */
const matchWords = (pattern: readonly string[], key: readonly string[]): boolean => {
  let p = 0;
  let k = 0;
  let hashAt = -1;
  let hashKey = 0;
  while (k < key.length) {
    const word = pattern[p];
    if (p < pattern.length && word === "#") {
      hashAt = p++;
      hashKey = k;
    } else if (p < pattern.length && (word === "*" || word === key[k])) {
      p++;
      k++;
    } else if (hashAt >= 0) {
      // Let the last `#` swallow one more word and retry from there.
      p = hashAt + 1;
      k = ++hashKey;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "#") p++;
  return p === pattern.length;
};
