import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The loopback RP receiver of tests/e2e/helpers/rp-receiver.ts (its control API: tests/helpers/rp.ts). */
    rpReceiver: string;
  }
}
