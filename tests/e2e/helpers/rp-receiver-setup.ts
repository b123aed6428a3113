import type { TestProject } from "vitest/node";
import { RpReceiver } from "./rp-receiver.ts";

/**
 * vitest globalSetup of the `workers` project: one loopback RP receiver (rp-receiver.ts) in Node for the whole run,
 * its URL handed to the tests in workerd as `inject("rpReceiver")` (tests/helpers/rp.ts). Each test uses RP names of
 * its own, so files running side by side never share an RP.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const receiver = await RpReceiver.start();
  project.provide("rpReceiver", receiver.url);
  return () => receiver.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    rpReceiver: string;
  }
}
