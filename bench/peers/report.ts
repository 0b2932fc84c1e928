/**
 * The peers bench's report: the statistics of a set of runs, the markdown
 * table, the target checks and the SVG chart (hand-written, no dependency:
 * throughput per workload and latency per system, on log scales).
 */

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export type Cell =
  | { readonly kind: "rate"; readonly tasksPerRun: number; readonly runs: readonly number[]; readonly stat: Stat }
  | {
      readonly kind: "latency";
      readonly tasksPerRun: number;
      readonly rate: number;
      readonly p50: Stat;
      readonly p99: Stat;
    }
  | { readonly kind: "skipped"; readonly reason: string };

export interface SystemResult {
  readonly id: string;
  readonly label: string;
  readonly setup: string;
  readonly versions: Record<string, string>;
  readonly skipped?: string;
  readonly cells: Record<string, Cell>;
}

export interface WorkloadInfo {
  readonly id: string;
  readonly label: string;
  /** A label of a few words for the chart. */
  readonly short?: string;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const stat = (xs: readonly number[]): Stat => ({
  median: median(xs),
  min: Math.min(...xs),
  max: Math.max(...xs),
});

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

const compact = (x: number): string =>
  x >= 10_000 ? `${Math.round(x / 1_000).toLocaleString("en")}k` : Math.round(x).toLocaleString("en");
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

const cellText = (cell: Cell | undefined): string => {
  if (cell === undefined) return "";
  switch (cell.kind) {
    case "rate":
      return `${Math.round(cell.stat.median).toLocaleString("en")} (${compact(cell.stat.min)}–${compact(cell.stat.max)})`;
    case "latency":
      return `p50 ${ms(cell.p50.median)} / p99 ${ms(cell.p99.median)} ms (p99 ${ms(cell.p99.min)}–${ms(cell.p99.max)})`;
    case "skipped":
      return `n/a: ${cell.reason}`;
  }
};

/** One row per workload, one column per system; throughput in tasks/s (median, min–max), latency in ms. */
export const markdownTable = (systems: readonly SystemResult[], workloads: readonly WorkloadInfo[]): string => {
  const shown = systems.filter((s) => s.skipped === undefined);
  if (shown.length === 0)
    return ["No system ran.", ...systems.map((s) => `${s.label}: skipped, ${s.skipped}`)].join("\n");
  const lines = [`| workload | ${shown.map((s) => s.label).join(" | ")} |`, `|---|${shown.map(() => "---|").join("")}`];
  for (const w of workloads) lines.push(`| ${w.label} | ${shown.map((s) => cellText(s.cells[w.id])).join(" | ")} |`);
  for (const s of systems) if (s.skipped !== undefined) lines.push(`\n${s.label}: skipped, ${s.skipped}`);
  return lines.join("\n");
};

const rateOf = (s: SystemResult | undefined, workload: string): number | undefined => {
  const cell = s?.cells[workload];
  return cell?.kind === "rate" ? cell.stat.median : undefined;
};
const p99Of = (s: SystemResult | undefined): number | undefined => {
  const cell = s?.cells.latency;
  return cell?.kind === "latency" ? cell.p99.median : undefined;
};

/** The targets: celerity's node at least 10x BullMQ and 20x Celery in processing a backlog, a lower p99 than both; embedded far above all. */
export const targetLines = (systems: readonly SystemResult[]): string[] => {
  const by = (id: string) => systems.find((s) => s.id === id && s.skipped === undefined);
  const node = by("celerity-node");
  const lines: string[] = [];
  const ratio = (label: string, peer: SystemResult | undefined, workload: string, target: number) => {
    const a = rateOf(node, workload);
    const b = rateOf(peer, workload);
    if (a === undefined || b === undefined || peer === undefined) return;
    const x = a / b;
    lines.push(
      `- ${label}: celerity node ${x.toFixed(1)}x ${peer.label} (target ${target}x): ${x >= target ? "met" : "short"}`,
    );
  };
  for (const [workload, label] of [
    ["backlog", "processing a backlog"],
    ["concurrent", "enqueue and process concurrently"],
  ] as const) {
    ratio(label, by("bullmq"), workload, 10);
    ratio(label, by("celery-redis"), workload, 20);
    ratio(label, by("celery-rabbitmq"), workload, 20);
  }
  const nodeP99 = p99Of(node);
  for (const peer of ["bullmq", "bee-queue", "celery-redis", "celery-rabbitmq"]) {
    const p = p99Of(by(peer));
    if (nodeP99 === undefined || p === undefined) continue;
    lines.push(
      `- send-to-start p99: celerity node ${ms(nodeP99)} ms vs ${by(peer)!.label} ${ms(p)} ms: ${nodeP99 < p ? "lower" : "not lower"}`,
    );
  }
  const onRedis = by("celerity-redis");
  const bull = by("bullmq");
  for (const [workload, label] of [
    ["backlog", "processing a backlog"],
    ["concurrent", "enqueue and process concurrently"],
  ] as const) {
    const a = rateOf(onRedis, workload);
    const b = rateOf(bull, workload);
    if (a === undefined || b === undefined) continue;
    lines.push(
      `- ${label} on the same Redis: celerity ${(a / b).toFixed(1)}x BullMQ (target 3x): ${a / b >= 3 ? "met" : "short"}`,
    );
  }
  const embedded = rateOf(by("celerity-embedded"), "backlog");
  const best = Math.max(...systems.filter((s) => !s.id.startsWith("celerity")).map((s) => rateOf(s, "backlog") ?? 0));
  if (embedded !== undefined && best > 0)
    lines.push(`- processing a backlog: celerity embedded ${(embedded / best).toFixed(1)}x the fastest peer`);
  return lines;
};

const COLORS = ["#1f77b4", "#6baed6", "#9ecae1", "#d62728", "#ff9896", "#2ca02c", "#98df8a", "#9467bd"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Log-scale bar chart: throughput per workload (grouped by system), and send-to-start latency p50/p99 per system. */
export const svgChart = (
  systems: readonly SystemResult[],
  workloads: readonly WorkloadInfo[],
  subtitle: string,
): string => {
  const shown = systems.filter((s) => s.skipped === undefined);
  const rateWorkloads = workloads.filter((w) => w.id !== "latency");
  const W = 980;
  const top = 70;
  const plotH = 300;
  const left = 70;
  const groupW = (620 - left) / Math.max(1, rateWorkloads.length);
  const barW = Math.max(3, (groupW - 12) / Math.max(1, shown.length));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${top + plotH + 120}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">celerity and its peers: throughput and latency</text>`,
  );
  out.push(`<text x="10" y="38" fill="#555">${esc(subtitle)}</text>`);
  // Throughput panel, log10 from 10 to 10^6.
  const [lo, hi] = [1, 6];
  const yRate = (v: number) => top + plotH - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plotH;
  out.push(`<text x="${left}" y="${top - 12}" font-weight="bold">tasks/s (median; whiskers min–max; log scale)</text>`);
  for (let e = lo; e <= hi; e++) {
    const y = yRate(10 ** e);
    out.push(
      `<line x1="${left}" x2="620" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${compact(10 ** e)}</text>`,
    );
  }
  rateWorkloads.forEach((w, wi) => {
    const gx = left + wi * groupW + 6;
    shown.forEach((s, si) => {
      const cell = s.cells[w.id];
      const x = gx + si * barW;
      if (cell?.kind !== "rate") return;
      const y = yRate(cell.stat.median);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(top + plotH - y).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.label}, ${w.label}: ${cellText(cell)}`)}</title></rect>`,
      );
      const cx = x + (barW - 1) / 2;
      out.push(
        `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${yRate(cell.stat.max).toFixed(1)}" y2="${yRate(cell.stat.min).toFixed(1)}" stroke="#333"/>`,
      );
    });
    (w.short ?? w.label).split("\n").forEach((line, li) => {
      out.push(
        `<text x="${(gx + groupW / 2 - 6).toFixed(1)}" y="${top + plotH + 16 + li * 13}" text-anchor="middle">${esc(line)}</text>`,
      );
    });
  });
  // Latency panel, log10 from 0.01 ms to 10 s.
  const lx = 690;
  const lw = W - lx - 20;
  const [llo, lhi] = [-2, 4];
  const yLat = (v: number) =>
    top + plotH - ((Math.log10(Math.min(Math.max(v, 10 ** llo), 10 ** lhi)) - llo) / (lhi - llo)) * plotH;
  const latency = workloads.find((w) => w.id === "latency");
  out.push(
    `<text x="${lx}" y="${top - 12}" font-weight="bold">send-to-start latency, ms (p50 solid, p99 light)</text>`,
  );
  for (let e = llo; e <= lhi; e++) {
    const y = yLat(10 ** e);
    out.push(
      `<line x1="${lx}" x2="${lx + lw}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${lx - 6}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)}</text>`,
    );
  }
  if (latency !== undefined) {
    const bw = lw / Math.max(1, shown.length);
    shown.forEach((s, si) => {
      const cell = s.cells.latency;
      if (cell?.kind !== "latency") return;
      const x = lx + si * bw + 4;
      const y99 = yLat(cell.p99.median);
      const y50 = yLat(cell.p50.median);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y99.toFixed(1)}" width="${(bw - 8).toFixed(1)}" height="${(top + plotH - y99).toFixed(1)}" fill="${COLORS[si % COLORS.length]}" opacity="0.35"><title>${esc(`${s.label}: ${cellText(cell)}`)}</title></rect>`,
      );
      out.push(
        `<rect x="${(x + (bw - 8) / 4).toFixed(1)}" y="${y50.toFixed(1)}" width="${((bw - 8) / 2).toFixed(1)}" height="${(top + plotH - y50).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"/>`,
      );
    });
    out.push(`<text x="${lx}" y="${top + plotH + 16}" fill="#555">${esc(latency.label)}</text>`);
  }
  // Legend.
  shown.forEach((s, si) => {
    const x = 10 + (si % 4) * 240;
    const y = top + plotH + 70 + Math.floor(si / 4) * 18;
    out.push(
      `<rect x="${x}" y="${y - 9}" width="12" height="10" fill="${COLORS[si % COLORS.length]}"/><text x="${x + 16}" y="${y}">${esc(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
};
