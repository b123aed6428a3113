/** The `dev` email transport's mailbox (D1 `dev_mailbox`), served at GET /dev/mailbox on a loopback issuer only. */

export interface DevMessage {
  to: string;
  /** EMAIL_FROM when it was sent (null for messages stored before the column existed). */
  from: string | null;
  subject: string;
  text: string;
  /** The HTML part (null for messages stored before the column existed). */
  html: string | null;
  link: string | null;
  sentAt: number;
}

export async function storeDevMessage(db: D1Database, message: DevMessage): Promise<void> {
  await db
    .prepare(`INSERT INTO dev_mailbox (id, "to", "from", subject, text, html, link, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .bind(crypto.randomUUID(), message.to, message.from, message.subject, message.text, message.html, message.link, message.sentAt)
    .run();
}

/** Newest first. */
export async function devMessagesTo(db: D1Database, to: string, limit = 50): Promise<DevMessage[]> {
  const { results } = await db
    .prepare(`SELECT "to", "from", subject, text, html, link, sent_at FROM dev_mailbox WHERE "to" = ? ORDER BY sent_at DESC LIMIT ?`)
    .bind(to, limit)
    .all<{ to: string; from: string | null; subject: string; text: string; html: string | null; link: string | null; sent_at: number }>();
  return results.map((r) => ({ to: r.to, from: r.from, subject: r.subject, text: r.text, html: r.html, link: r.link, sentAt: r.sent_at }));
}
