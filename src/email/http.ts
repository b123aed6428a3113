import { EmailDeliveryError, type EmailMessage } from "./message";

export interface HttpTransportConfig {
  url: string;
  apiKey: string;
  from: string;
}

const TIMEOUT_MS = 10_000;

/**
 * An HTTP email API in the style of Resend and Postmark: `POST url` with JSON `{from, to, subject, text, html}` and
 * `Authorization: Bearer <key>`. Any 2xx is accepted; anything else (or no answer in time) is a delivery failure.
 * The API's answer is never passed on: it may echo the key or the message.
 */
export async function sendWithHttpTransport(config: HttpTransportConfig, message: EmailMessage): Promise<void> {
  if (config.url === "" || config.apiKey === "") throw new EmailDeliveryError("http", "EMAIL_API_URL and EMAIL_API_KEY must be set");
  let response: Response;
  try {
    response = await fetch(config.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${config.apiKey}` },
      body: JSON.stringify({ from: config.from, to: message.to, subject: message.subject, text: message.text, html: message.html }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new EmailDeliveryError("http", error instanceof Error ? error.name : "network error");
  }
  // Drain the body so the connection can be reused; its content is not used.
  await response.body?.cancel().catch(() => undefined);
  if (!response.ok) throw new EmailDeliveryError("http", `status ${response.status}`);
}
