/** The `dev` email transport's mailbox (D1 `dev_mailbox`), served at GET /dev/mailbox on a loopback issuer only. */

export interface DevMessage {
  to: string;
  subject: string;
  text: string;
  link: string | null;
  sentAt: number;
}

export async function storeDevMessage(db: D1Database, message: DevMessage): Promise<void> {
  await db
    .prepare(`INSERT INTO dev_mailbox (id, "to", subject, text, link, sent_at) VALUES (?, ?, ?, ?, ?, ?)`)
    .bind(crypto.randomUUID(), message.to, message.subject, message.text, message.link, message.sentAt)
    .run();
}

/** Newest first. */
export async function devMessagesTo(db: D1Database, to: string, limit = 50): Promise<DevMessage[]> {
  const { results } = await db
    .prepare(`SELECT "to", subject, text, link, sent_at FROM dev_mailbox WHERE "to" = ? ORDER BY sent_at DESC LIMIT ?`)
    .bind(to, limit)
    .all<{ to: string; subject: string; text: string; link: string | null; sent_at: number }>();
  return results.map((r) => ({ to: r.to, subject: r.subject, text: r.text, link: r.link, sentAt: r.sent_at }));
}
