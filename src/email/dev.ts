import { isLocalIssuer } from "../config";
import { log } from "../lib/log";
import { storeDevMessage } from "../db/dev-mailbox";
import { EmailDeliveryError, type EmailMessage } from "./message";

/**
 * The development transport: the message goes to the D1 dev mailbox (GET /dev/mailbox), nowhere else. It works only
 * for a loopback issuer: on any other the mailbox would serve anyone's sign-in link to anyone, so the transport
 * refuses to "send" (the user sees the could-not-send page) and tells the operator what to set instead.
 */
export async function sendWithDevTransport(db: D1Database, issuer: string, from: string, message: EmailMessage): Promise<void> {
  if (!isLocalIssuer(issuer)) {
    log("error", "email.dev_transport_refused", {
      issuer: issuer.slice(0, 200),
      action: "EMAIL_TRANSPORT=dev works only on a loopback issuer (localhost, 127.0.0.1, [::1]); set EMAIL_TRANSPORT=http with EMAIL_API_URL, EMAIL_API_KEY and EMAIL_FROM",
    });
    throw new EmailDeliveryError("dev", "refused: the issuer is not a loopback address");
  }
  try {
    await storeDevMessage(db, { ...message, from, sentAt: Date.now() });
  } catch (error) {
    throw new EmailDeliveryError("dev", error instanceof Error ? error.name : "failed");
  }
}
