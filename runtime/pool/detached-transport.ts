// The broker of an app loaded in a pool's thread or child when the app uses the embedded
// broker: every call fails, saying why and what to use instead.
import type { DeadLetter, Envelope } from "../../broker/envelope.ts";
import type { Consumer, ExchangeType, QueueStats, Transport } from "../../broker/transport.ts";
import { WorkerError } from "../errors.ts";

/**
 * The broker of an app loaded in a pool's thread or child when the app uses
 * the embedded broker: that broker lives in the worker's main thread, and a
 * second one here would swallow every message sent to it. So every call
 * fails, saying why and what to do; sending tasks from a pooled task works
 * with a broker node, which each thread or child then connects to.
 */
export class DetachedTransport implements Transport {
  private refuse(what: string): Promise<never> {
    return Promise.reject(
      new WorkerError({
        worker: `pool child ${process.pid}`,
        reason: `cannot ${what} from a task on a threads or process pool with the embedded broker (it lives in the worker's main thread): use a broker node, createApp({ broker: "celerity://host:port" })`,
      }),
    );
  }
  declareQueue(): Promise<void> {
    return this.refuse("declare a queue");
  }
  declareExchange(_name: string, _type: ExchangeType): Promise<void> {
    return this.refuse("declare an exchange");
  }
  bindQueue(): Promise<void> {
    return this.refuse("bind a queue");
  }
  publish(envelope: Envelope): Promise<void> {
    return this.refuse(`send a message (${String(envelope.headers.task ?? envelope.id)})`);
  }
  consume(): Promise<Consumer> {
    return this.refuse("consume a queue");
  }
  revoke(): Promise<void> {
    return this.refuse("revoke tasks");
  }
  isRevoked(): boolean {
    return false;
  }
  onRevoke(): () => void {
    return () => {};
  }
  deadLetters(): Promise<readonly DeadLetter[]> {
    return this.refuse("read dead letters");
  }
  stats(): Promise<QueueStats> {
    return this.refuse("read queue stats");
  }
  async close(): Promise<void> {}
}
