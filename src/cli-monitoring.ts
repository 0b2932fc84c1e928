/** The commands that watch and steer a running cluster, dispatched by name: `events`, `inspect`, `control`, `queues`. */
export const runMonitoring = async (command: "events" | "inspect" | "control" | "queues", argv: readonly string[]): Promise<number> => {
  switch (command) {
    case "events":
      return (await import("./cli-events.ts")).runEvents(argv);
    case "inspect":
      return (await import("./cli-control.ts")).runInspect(argv);
    case "control":
      return (await import("./cli-control.ts")).runControl(argv);
    case "queues":
      return (await import("./cli-queues.ts")).runQueues(argv);
  }
};
