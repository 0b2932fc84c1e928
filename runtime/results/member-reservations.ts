// `reserveMembers` on any result store: the store's own where it has one
// (one entry per set), else one reservation per member, under the set's key
// and the member (Redis and PostgreSQL keep one key or row per member).
import type { ResultStore } from "./result-store.ts";

/** Reserve `members` of the set `key` for `id` (see ResultStore.reserveMembers): whether `id` holds each after the call. */
export type ReserveMembers = (
  key: string,
  members: readonly number[],
  id: string,
  ttlMs: number,
) => Promise<readonly boolean[]>;

/** The key a store without `reserveMembers` reserves one member under. */
export const memberKey = (key: string, member: number): string => `${key}#${member}`;

export const reserveMembersOf =
  (store: Pick<ResultStore, "reserve" | "reserveAll" | "reserveMembers">): ReserveMembers =>
  async (key, members, id, ttlMs) => {
    if (store.reserveMembers !== undefined) return store.reserveMembers(key, members, id, ttlMs);
    const keys = members.map((member) => memberKey(key, member));
    const holders =
      store.reserveAll !== undefined
        ? await store.reserveAll(
            keys,
            id,
            keys.map(() => ttlMs),
          )
        : await Promise.all(keys.map((one) => store.reserve(one, id, ttlMs)));
    return holders.map((holder) => holder === id);
  };
