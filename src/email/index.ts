import { loadConfig } from "../config";
import type { Env } from "../env";
import { sendWithDevTransport } from "./dev";
import { sendWithHttpTransport } from "./http";
import { EmailDeliveryError, type EmailMessage } from "./message";

export { EmailDeliveryError, type EmailMessage } from "./message";

/**
 * Outgoing email, through the transport the settings name (EMAIL_TRANSPORT):
 * - `dev` (default, local and tests): stored in D1 and served at GET /dev/mailbox — never in production;
 * - `http`: a Resend/Postmark-style HTTP API (EMAIL_API_URL, secret EMAIL_API_KEY, EMAIL_FROM).
 */

export async function sendEmail(env: Env, message: EmailMessage): Promise<void> {
  const config = loadConfig(env);
  if (config.emailTransport === "dev") {
    try {
      await sendWithDevTransport(env.DB, message);
    } catch (error) {
      throw new EmailDeliveryError("dev", error instanceof Error ? error.name : "failed");
    }
    return;
  }
  await sendWithHttpTransport(
    { url: config.emailApiUrl, apiKey: config.emailApiKey, from: config.emailFrom },
    message,
  );
}
