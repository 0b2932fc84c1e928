/**
 * What a test needs from the machine (a service, a device, a privilege) and
 * what happens without it: locally the test is skipped with the reason
 * printed beside its name; with CELERITY_REQUIRE_SERVICES=1 (as CI runs)
 * nothing is skipped, so a missing prerequisite fails the run instead of
 * hiding a path that must be tested.
 *
 * @example
 * it("reports ENOSPC", { skip: skipUnless(existsSync("/dev/full"), "/dev/full is missing") }, async () => { ... });
 */

/** True when every prerequisite must be there (CI). */
export const REQUIRE_PREREQUISITES = process.env.CELERITY_REQUIRE_SERVICES === "1";

/** A skip reason for node:test's `skip` option, or false when the test must run. */
export const skipUnless = (available: boolean, missing: string): string | false => {
  if (available || REQUIRE_PREREQUISITES) return false;
  return `${missing} (with CELERITY_REQUIRE_SERVICES=1 this fails instead)`;
};
