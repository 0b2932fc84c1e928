/**
 * The monitor in a real browser: a `celerity broker`, a `celerity worker
 * --events` and `celerity monitor` as processes, tasks sent from this
 * process, and headless Chromium (Debian's `chromium`, driven by
 * puppeteer-core) reading the dashboard. Every wait is bounded and names
 * what it waited for; every process and the browser are stopped at the end.
 *
 * With CELERITY_UPDATE_SCREENSHOTS=1 the screenshots are written to docs/
 * (monitor.png, monitor-task.png) for docs/monitor.md.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chord, group } from "../dsl/combinators.ts";
import { createApp, type App } from "../runtime/app.ts";
import { skipUnless } from "./support/prerequisites.ts";
import { scaled, within } from "./support/waits.ts";
import { WatchedProcess } from "./support/watched-process.ts";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const APP = fileURLToPath(new URL("./fixtures/monitor-app.ts", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const START_MS = scaled(60_000);
const WAIT_MS = scaled(20_000);

/** The little of the DOM the page checks read: the tests compile without the DOM's types. */
interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};

const celerity = (name: string, ...args: string[]) =>
  new WatchedProcess(name, process.execPath, [CLI, ...args], { cwd: ROOT });

describe("the monitor in headless Chromium", () => {
  it("shows the worker, a succeeded task, a failed task's traceback, a chord's graph and a queue depth changing live", {
    skip: skipUnless(existsSync(CHROMIUM), `Chromium is not at ${CHROMIUM} (apt-get install chromium)`),
    timeout: 300_000,
  }, async () => {
    const { default: puppeteer } = await import("puppeteer-core");
    const processes: WatchedProcess[] = [];
    const shots = mkdtempSync(join(tmpdir(), "celerity-monitor-"));
    let app: App | undefined;
    let browser: Awaited<ReturnType<typeof puppeteer.launch>> | undefined;
    const tails = () => processes.map((child) => child.tail()).join("\n");
    try {
      const broker = celerity("broker", "broker", "--port", "0");
      processes.push(broker);
      const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_MS);
      const worker = celerity(
        "worker",
        "worker",
        "--app",
        APP,
        "--broker",
        url,
        "--events",
        "--name",
        "w1",
        "--concurrency",
        "2",
      );
      const monitor = celerity("monitor", "monitor", "--broker", url, "--port", "0");
      processes.push(worker, monitor);
      const [[, dashboard]] = await Promise.all([
        monitor.waitFor(/serving (http:\/\/[\d.]+:\d+)/, START_MS),
        worker.waitFor(/consuming with concurrency/, START_MS),
      ]);

      browser = await within(
        puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] }),
        START_MS,
        "Chromium to start",
      );
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 860 });
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      page.on("dialog", (dialog) => void dialog.accept());
      const showing = async (what: string, predicate: (arg: string | null) => boolean, arg: string | null) => {
        try {
          await page.waitForFunction(predicate, { timeout: WAIT_MS, polling: 100 }, arg);
        } catch (error) {
          throw new Error(
            `timed out after ${WAIT_MS} ms waiting for the page to show ${what} (${error instanceof Error ? error.message : String(error)})\npage errors: ${pageErrors.join("; ") || "none"}\n${tails()}`,
          );
        }
      };
      await page.goto(dashboard, { waitUntil: "load" });

      // The worker, from its events and its stats.
      await showing(
        "worker w1 online",
        () => document.querySelector('#workers tr[data-worker="w1"] .badge')?.textContent === "online",
        null,
      );

      app = createApp({ broker: url, log: () => {} });
      const add = app.task("shop.add", (x: number, y: number) => x + y);
      const charge = app.task("shop.charge", (_card: string) => 0);
      const total = app.task("shop.total", (values: number[]) => values.reduce((sum, value) => sum + value, 0));
      const sum = await add.delay(2, 3);
      assert.equal(await sum.get({ timeout: WAIT_MS }), 5);
      const declined = await charge.delay("4242");
      await assert.rejects(declined.get({ timeout: WAIT_MS }), /card 4242 was declined/);
      const workflow = await chord(group(add.s(1, 1), add.s(2, 2), add.s(3, 3)), total.s()).apply();
      assert.equal(await workflow.get({ timeout: WAIT_MS }), 12);

      // A succeeded task in the list, filtered by state.
      await page.goto(`${dashboard}/#/tasks`);
      await page.select("#filter-state", "SUCCESS");
      // Waits for the filtered list itself: the unfiltered one, shown first, already holds the succeeded task.
      await showing(
        "only succeeded tasks in the list, the sum among them",
        (id) => {
          const rows = Array.from(document.querySelectorAll("#tasks tbody tr[data-state]"));
          return (
            rows.length >= 5 &&
            rows.every((row) => row.getAttribute("data-state") === "SUCCESS") &&
            rows.some((row) => row.getAttribute("data-task-id") === id)
          );
        },
        sum.id,
      );

      // The failed task's page, with its traceback.
      await page.goto(`${dashboard}/#/tasks/${declined.id}`);
      await showing(
        "the failed task's traceback",
        () =>
          document.querySelector("#task-state")?.textContent === "FAILURE" &&
          /CardDeclinedError: card 4242 was declined\n\s+at /.test(
            document.querySelector("#task-traceback")?.textContent ?? "",
          ),
        null,
      );

      // The chord's callback: its workflow drawn, three members feeding the callback, each step's state.
      await page.goto(`${dashboard}/#/tasks/${workflow.id}`);
      await showing(
        "the chord's graph",
        () => document.querySelectorAll('#workflow-graph g.step[data-state="SUCCESS"]').length === 4,
        null,
      );
      const steps = await page.$$eval("#workflow-graph g.step", (nodes) =>
        nodes.map((node) => [node.querySelector("text")?.textContent, node.getAttribute("data-state")]),
      );
      assert.deepEqual(steps, [
        ["shop.add", "SUCCESS"],
        ["shop.add", "SUCCESS"],
        ["shop.add", "SUCCESS"],
        ["shop.total", "SUCCESS"],
      ]);
      assert.equal(await page.$$eval("#workflow-graph path[marker-end]", (edges) => edges.length), 3);
      await page.screenshot({ path: join(shots, "monitor-task.png") });

      // A queue no worker consumes: its depth goes up live, then the page's Purge empties it.
      await page.goto(`${dashboard}/#/`);
      await app.broker.declareQueue("orders");
      const depth = (ready: string) =>
        showing(
          `queue orders with ${ready} ready`,
          (want) => document.querySelector('#queues tr[data-queue="orders"] .ready')?.textContent === want,
          ready,
        );
      await depth("0");
      await page.evaluate(() => {
        (globalThis as unknown as { stayed: boolean }).stayed = true;
      });
      await add.applyAsync([1, 2], { queue: "orders" });
      await depth("1");
      await add.applyAsync([3, 4], { queue: "orders" });
      await add.applyAsync([5, 6], { queue: "orders" });
      await depth("3");
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed),
        true,
        "the depth changed without reloading the page",
      );
      await page.click('#queues tr[data-queue="orders"] button.danger');
      await depth("0");
      assert.equal((await app.queues.list()).find((queue) => queue.name === "orders")?.ready, 0);

      await page.screenshot({ path: join(shots, "monitor.png") });
      const png = readFileSync(join(shots, "monitor.png"));
      assert.equal(png.subarray(1, 4).toString(), "PNG");
      if (process.env.CELERITY_UPDATE_SCREENSHOTS === "1") {
        for (const name of ["monitor.png", "monitor-task.png"])
          copyFileSync(join(shots, name), join(ROOT, "docs", name));
      }
      assert.deepEqual(pageErrors, []);
      assert.deepEqual(await monitor.stop("SIGTERM", START_MS), { code: 0, signal: null }, "the monitor exits cleanly");
    } finally {
      await browser?.close();
      await app?.close();
      await Promise.all(processes.map((child) => child.kill()));
      rmSync(shots, { recursive: true, force: true });
    }
  });
});
