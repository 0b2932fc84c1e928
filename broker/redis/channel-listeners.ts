// The listeners of Redis pub/sub channels on one subscriber connection: each
// channel subscribed once, on its first listener, and every message handed to
// the listeners of its channel. Shared by the Redis transport and the Redis
// result store, which both let other services listen beside their own use.

/**
 * Listeners by channel, over `subscribe` (the subscriber connection's).
 *
 * @example
 * const channels = new ChannelListeners((channel) => subscriber.subscribe(channel));
 * subscriber.on("message", (channel, message) => channels.deliver(channel, message));
 * const stop = await channels.listen("{celerity}:rate-limit", (message) => console.log(message));
 */
export class ChannelListeners {
  private readonly listeners = new Map<string, Set<(message: string) => void>>();

  constructor(private readonly subscribe: (channel: string) => Promise<unknown>) {}

  /** Hear `channel`; resolves once subscribed, to the function that stops listening. */
  async listen(channel: string, listener: (message: string) => void): Promise<() => void> {
    let listeners = this.listeners.get(channel);
    if (listeners === undefined) {
      this.listeners.set(channel, (listeners = new Set()));
      await this.subscribe(channel);
    }
    const subscription = (message: string) => listener(message);
    listeners.add(subscription);
    return () => {
      listeners.delete(subscription);
    };
  }

  /** Hand `message` to the listeners of `channel`; false when it has none (a channel of the owner's own). */
  deliver(channel: string, message: string): boolean {
    const listeners = this.listeners.get(channel);
    if (listeners === undefined) return false;
    for (const listener of listeners) listener(message);
    return true;
  }
}
