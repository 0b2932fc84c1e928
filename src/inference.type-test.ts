/**
 * Type tests for the DSL's inference, checked by `tsc` in `npm test`: each
 * `@ts-expect-error` line must be an error, and each `expectType` must hold.
 * Nothing here runs.
 */
import { Effect } from "effect";
import { chain, chord, createApp, group, type AsyncResult, type ResultOf, type TaskFailure } from "./index.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_proof?: T) => {};

const app = createApp();
const add = app.task("add", (x: number, y: number) => x + y);
const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
const greet = app.task("greet", async (name: string) => `hello ${name}`);
const len = app.task("len", (s: string) => s.length);
const viaEffect = app.task("viaEffect", (n: number) => Effect.succeed(String(n)));
const noArgs = app.task("noArgs", () => 42);
const optional = app.task("optional", (x: number, y = 1) => x * y);

// Handlers: sync, async and Effect results are all the value.
expectType<Equal<ResultOf<ReturnType<typeof add.s<[1, 2]>>>, number>>();
expectType<Equal<Awaited<ReturnType<typeof greet.delay>>, AsyncResult<string>>>();
expectType<Equal<Awaited<ReturnType<typeof viaEffect.delay>>, AsyncResult<string>>>();

// delay checks its arguments.
void add.delay(1, 2);
// @ts-expect-error a string is not a number
void add.delay(1, "2");
// @ts-expect-error too few arguments
void add.delay(1);

// A chain is typed by its last step.
const c1 = chain(add.s(2, 2), add.s(4), add.s(8));
expectType<Equal<ResultOf<typeof c1>, number>>();
const c2 = chain(greet.s("ada"), len.s());
expectType<Equal<ResultOf<typeof c2>, number>>();
const c3 = chain(add.s(1, 1), add.s(2), noArgs.si());
expectType<Equal<ResultOf<typeof c3>, number>>();
const c4 = chain(add.s(1, 2), optional.s());
expectType<Equal<ResultOf<typeof c4>, number>>();

// @ts-expect-error len takes a string, add produces a number
chain(add.s(2, 2), len.s());
// @ts-expect-error a complete signature cannot take the previous result (use .si to ignore it)
chain(add.s(2, 2), add.s(1, 1));
// @ts-expect-error the first step must not need a parent's result
chain(add.s(2), add.s(3)).apply();

// A group is typed by the tuple of its members' results; an array makes an array.
const g1 = group(add.s(1, 1), greet.s("x"));
expectType<Equal<ResultOf<typeof g1>, [number, string]>>();
const g2 = group([1, 2, 3].map((n) => add.s(n, n)));
expectType<Equal<ResultOf<typeof g2>, number[]>>();

// A chord is typed by its callback, which must accept the header's results.
const ch = chord(group(add.s(1, 1), add.s(2, 2)), tsum.s());
expectType<Equal<ResultOf<typeof ch>, number>>();
// @ts-expect-error greet takes a string, the header yields numbers
chord(group(add.s(1, 1), add.s(2, 2)), greet.s());

// Nesting: a chord inside a chain, a chain inside a group.
const nested = chain(chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()), add.s(10));
expectType<Equal<ResultOf<typeof nested>, number>>();
const groupOfChains = group(chain(add.s(1, 1), add.s(1)), chain(greet.s("a"), len.s()));
expectType<Equal<ResultOf<typeof groupOfChains>, [number, number]>>();
// A chain into a group: every member receives the previous result.
const fanOut = chain(add.s(1, 1), group(add.s(1), add.s(2)));
expectType<Equal<ResultOf<typeof fanOut>, [number, number]>>();
// @ts-expect-error one member of the group cannot take a number
chain(add.s(1, 1), group(add.s(1), len.s()));

// map / starmap / chunks.
const m = add.starmap([
  [1, 2],
  [3, 4],
]);
expectType<Equal<ResultOf<typeof m>, number[]>>();
const chunks = add.chunks(
  [
    [1, 2],
    [3, 4],
  ],
  1,
);
expectType<Equal<ResultOf<typeof chunks>, number[][]>>();
const mapped = len.map(["a", "bb"]);
expectType<Equal<ResultOf<typeof mapped>, number[]>>();
// @ts-expect-error len maps strings, not numbers
len.map([1, 2]);

// Partial signatures: the given arguments are the trailing ones, the parent's result comes first.
const label = app.task("label", (n: number, unit: string) => `${n} ${unit}`);
const labelled = chain(add.s(1, 1), label.s("kg"));
expectType<Equal<ResultOf<typeof labelled>, string>>();
// @ts-expect-error label's last parameter is a string: s(5) does not fit it
label.s(5);
// @ts-expect-error greet yields a string but label's first parameter is a number
chain(greet.s("x"), label.s("kg"));
chain(add.s(1, 2), optional.s(3));
const notify = app.task("notify", (failure: TaskFailure, channel: string) => `${failure.task} -> ${channel}`);
add.s(1, 2).onError(notify.s("#ops"));
// @ts-expect-error an error callback receives a TaskFailure first
add.s(1, 2).onError(label.s("kg"));

// link: the callback must accept the result.
add.s(1, 2).link(add.s(1));
// @ts-expect-error len cannot take add's number
add.s(1, 2).link(len.s());
