import { base64url } from "../lib/crypto";

/**
 * DPoP server nonces (RFC 9449 §8, §9) that need no storage: the nonce of a minute is the HMAC-SHA-256 of that minute
 * under DPOP_NONCE_SECRET. Every isolate, wherever it runs, issues and checks the same values, so a nonce costs no
 * round trip and nothing is written; without the secret nobody can compute a nonce of a minute to come, which is what a
 * server nonce is for (a proof made in advance by someone who briefly held the key cannot carry it).
 *
 * Why a secret setting, and not a key derived from something the Worker has: the only other secrets are the admin
 * token (whose rotation must not change anything else, and which may be empty) and the signing keys, which live in the
 * key manager object — deriving from them would cost /userinfo a round trip to that one global object per isolate and
 * would tie nonce rollover to key rotation. A secret of its own is one `wrangler secret put` and explains itself.
 */

/** A nonce belongs to one minute. */
export const NONCE_STEP_SECONDS = 60;
/** A nonce is accepted for the 4 minutes after its own (about 5 minutes in all, the default proof window)… */
const PAST_STEPS = 4;
/** …and one minute early, for an isolate whose clock runs a little ahead of the one that issued it. */
const FUTURE_STEPS = 1;

export interface NonceWindow {
  /** The nonce to hand out now. */
  current: string;
  /** Every nonce accepted now (the current one included). */
  accepted: readonly string[];
}

const keys = new Map<string, Promise<CryptoKey>>();
let cached: { secret: string; step: number; window: Promise<NonceWindow> } | null = null;

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (key === undefined) {
    if (keys.size > 4) keys.clear();
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

async function nonceOfStep(key: CryptoKey, step: number): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`dpop-nonce:${step}`));
  return base64url(new Uint8Array(mac));
}

async function computeWindow(secret: string, step: number): Promise<NonceWindow> {
  const key = await keyFor(secret);
  const steps = Array.from({ length: PAST_STEPS + 1 + FUTURE_STEPS }, (_, i) => step - PAST_STEPS + i);
  const values = await Promise.all(steps.map((s) => nonceOfStep(key, s)));
  return { current: values[PAST_STEPS]!, accepted: values };
}

/** The nonces of now under `secret` (computed once a minute per isolate). */
export function nonceWindow(secret: string, nowSeconds: number): Promise<NonceWindow> {
  const step = Math.floor(nowSeconds / NONCE_STEP_SECONDS);
  if (cached !== null && cached.secret === secret && cached.step === step) return cached.window;
  const window = computeWindow(secret, step);
  cached = { secret, step, window };
  window.catch(() => {
    if (cached?.window === window) cached = null;
  });
  return window;
}
