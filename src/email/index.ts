import { loadConfig } from "../config";
import type { Env } from "../env";
import { sendWithDevTransport } from "./dev";
import { sendWithHttpTransport } from "./http";
import type { EmailMessage } from "./message";

export { EmailDeliveryError, type EmailMessage } from "./message";

/**
 * Outgoing email, through the transport the settings name (EMAIL_TRANSPORT):
 * - `dev` (default, local and tests): stored in D1 and served at GET /dev/mailbox — only for a loopback issuer,
 *   refused anywhere else;
 * - `http`: a Resend/Postmark-style HTTP API (EMAIL_API_URL, secret EMAIL_API_KEY, EMAIL_FROM).
 * Any failure is an EmailDeliveryError.
 */
export async function sendEmail(env: Env, issuer: string, message: EmailMessage): Promise<void> {
  const config = loadConfig(env);
  if (config.emailTransport === "dev") return sendWithDevTransport(env.DB, issuer, config.emailFrom, message);
  await sendWithHttpTransport(
    { url: config.emailApiUrl, apiKey: config.emailApiKey, from: config.emailFrom },
    message,
  );
}
