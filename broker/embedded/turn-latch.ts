/**
 * A promise and the function that resolves it, made together: what the
 * waiters of one event-loop turn share, released once the turn's work is done.
 *
 * @example
 * const latch = new TurnLatch();
 * setImmediate(latch.release);
 * await latch.released;
 */
export class TurnLatch {
  readonly released: Promise<void>;
  readonly release: () => void;

  constructor() {
    let release!: () => void;
    this.released = new Promise<void>((done) => (release = done));
    this.release = release;
  }
}
