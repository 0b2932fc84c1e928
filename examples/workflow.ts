// The example `npm start` runs: a few canvases on the embedded broker.
import { chain, chord, createApp, group } from "../src/index.ts";

const app = createApp();
const add = app.task("add", (x: number, y: number) => x + y);
const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
const square = app.task("square", async (x: number) => x * x);
const fail = app.task("fail", async () => {
  throw new Error("boom");
});

const worker = app.worker({ concurrency: 8 });
await worker.start();

const show = (label: string, value: unknown) => console.log(`${label.padEnd(48)} ${JSON.stringify(value)}`);

const single = await add.delay(2, 2);
show(`add(2, 2)  [id ${single.id.slice(0, 8)}…]`, await single.get({ timeout: 5_000 }));
show("chain(add(2,2), add(4), add(8))", await (await chain(add.s(2, 2), add.s(4), add.s(8)).apply()).get());
show("group(add(1,1), add(2,2))", await (await group(add.s(1, 1), add.s(2, 2)).apply()).get());
show(
  "chord(group(add(1,1), add(2,2)), tsum)",
  await (await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply()).get(),
);
show("square.map([1..5])", await (await square.map([1, 2, 3, 4, 5]).apply()).get());
show(
  "add.chunks(10 pairs, 4)",
  await (
    await add
      .chunks(
        Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]),
        4,
      )
      .apply()
  ).get(),
);

const fan = await chord(
  Array.from({ length: 100 }, (_, i) => square.s(i)),
  tsum.s(),
).apply();
show("chord of 100 squares, summed", await fan.get());

const failed = await fail.delay();
try {
  await failed.get();
} catch (error) {
  show(`fail() -> ${await failed.state()}`, (error as Error).message);
}

await worker.stop();
await app.close();
