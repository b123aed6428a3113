import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { devMailbox } from "./schema";

export interface DevMessage {
  to: string;
  subject: string;
  text: string;
  link: string | null;
  sentAt: number;
}

export async function storeDevMessage(db: D1Database, message: DevMessage): Promise<void> {
  await drizzle(db).insert(devMailbox).values({ id: crypto.randomUUID(), ...message }).run();
}

/** Newest first. */
export async function devMessagesTo(db: D1Database, to: string, limit = 50): Promise<DevMessage[]> {
  const rows = await drizzle(db).select().from(devMailbox).where(eq(devMailbox.to, to)).orderBy(desc(devMailbox.sentAt)).limit(limit).all();
  return rows.map(({ to, subject, text, link, sentAt }) => ({ to, subject, text, link, sentAt }));
}
