// Signing a beat's runs in a signed app: the beat publishes through its schedule store,
// so its messages are sealed here first with the app's signing setup.
import type { Clock } from "../../broker/clock.ts";
import type { Envelope } from "../../broker/envelope.ts";
import type { PublishOptions, Transport } from "../../broker/transport.ts";
import type { ResultStore } from "../results/result-store.ts";
import type { Signed } from "../signing/signing-options.ts";

/** Turns a run's message into what is published: signed (and encrypted) for an app in signed mode. */
export type SealRun = (envelope: Envelope) => Promise<Envelope>;

/**
 * A beat publishes through the schedule store (which records the run and
 * publishes it in one step), not through the app's transport: in signed mode
 * its messages are signed here first, by the app's signing setup wrapped
 * around a transport that only hands each signed envelope back.
 */
export const sealRunsWith = (
  wrap: (
    connected: { readonly broker: Transport; readonly results: ResultStore },
    log: (message: string) => void,
    clock?: Clock,
  ) => Signed,
  results: ResultStore,
  log: (message: string) => void,
  /** The app's clock, which signing times are stamped by. */
  clock?: Clock,
): SealRun => {
  const sealed = new Map<string, Envelope>();
  const handBack = {
    publish(envelope: Envelope, _options?: PublishOptions): Promise<void> {
      sealed.set(envelope.id, envelope);
      return Promise.resolve();
    },
  } as unknown as Transport;
  const { broker } = wrap({ broker: handBack, results }, log, clock);
  return async (envelope) => {
    await broker.publish(envelope);
    const out = sealed.get(envelope.id) as Envelope;
    sealed.delete(envelope.id);
    return out;
  };
};
