import { storeDevMessage } from "../db/dev-mailbox";
import type { EmailMessage } from "./message";

/** The development transport: the message goes to the D1 dev mailbox (GET /dev/mailbox), nowhere else. */
export async function sendWithDevTransport(db: D1Database, message: EmailMessage): Promise<void> {
  await storeDevMessage(db, { ...message, sentAt: Date.now() });
}
