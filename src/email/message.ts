/** An outgoing email and the one error a transport reports. */

export interface EmailMessage {
  to: string;
  subject: string;
  /** The plain-text part. */
  text: string;
  /** The HTML part, beside the text (made by the `html` template: ui/email.ts). */
  html: string;
  /** The one link the message carries (a sign-in link), so the dev mailbox can hand it to tests. */
  link: string | null;
}

/** The message could not be handed to the transport. Carries no detail that may be unsafe to show or log. */
export class EmailDeliveryError extends Error {
  constructor(
    readonly transport: string,
    readonly reason: string,
  ) {
    super(`email delivery through ${transport} failed: ${reason}`);
    this.name = "EmailDeliveryError";
  }
}
