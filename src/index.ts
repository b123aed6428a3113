import { configRefusal, configUsable } from "./config-guard";
import { router } from "./router";
import { runScheduledMaintenance } from "./scheduled";
import type { Env } from "./env";

export { AuthCodeStore } from "./objects/auth-codes";
export { ParRequestStore } from "./objects/par-requests";
export { JtiStore } from "./objects/jtis";
export { ChallengeStore } from "./objects/challenges";
export { UserSessions } from "./objects/sessions";
export { TokenFamily } from "./objects/token-family";
export { KeyManager } from "./objects/key-manager";
export { RateLimiter } from "./objects/rate-limiter";
export { DeadLetterRegistry } from "./objects/dead-letter-registry";

export default {
  fetch(request, env, ctx) {
    // Invalid settings, or no ISSUER on a host that is not loopback: a 500 naming the setting, and nothing else runs.
    return configRefusal(request, env) ?? router.fetch(request, env, ctx);
  },
  scheduled(controller, env, ctx) {
    if (!configUsable(env)) return;
    ctx.waitUntil(runScheduledMaintenance(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
