import { html } from "./html";
import { contrast, type View } from "./layout";

/**
 * The sign-in email, in the language of the request that asked for it: a text part, and an HTML part (the same
 * escaping template as the pages; inline styles, which is what mail clients keep) with the operator's brand and the
 * link as a button.
 */
export function signInEmail(view: View, input: { link: string; minutes: number }): { subject: string; text: string; html: string } {
  const { t, brand } = view;
  const expires = t.text("mail.expires", { duration: t.minutes(input.minutes) });
  const intro = t.text("mail.intro", { brand: brand.name });
  const help = brand.support === null ? "" : `\n\n${t.text("footer.help", { contact: brand.support })}`;
  const text = `${intro}\n\n${input.link}\n\n${expires}${help}\n`;
  const color = brand.color ?? "#224455";
  const onColor = contrast(color, "#ffffff") >= contrast(color, "#000000") ? "#ffffff" : "#000000";
  const supportHref = brand.support === null ? null : brand.support.includes("@") && !brand.support.includes("/") ? `mailto:${brand.support}` : brand.support;
  const body = html`<!doctype html>
<html lang="${t.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${t.text("mail.subject")}</title></head>
<body style="margin:0;padding:24px 12px;background:#f4f5f7;color:#1d1f23;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif">
<div style="max-width:480px;margin:0 auto;background:#ffffff;border-radius:10px;padding:28px">
<p style="margin:0 0 20px;color:#555c68;font-weight:600">${brand.logoUrl ? html`<img src="${brand.logoUrl}" alt="" height="40" style="vertical-align:middle;max-height:40px;margin-right:8px">` : null}${brand.name}</p>
<p style="margin:0 0 20px">${intro}</p>
<p style="margin:0 0 20px"><a href="${input.link}" style="display:inline-block;padding:12px 24px;border-radius:6px;background:${color};color:${onColor};text-decoration:none;font-weight:600">${t.text("mail.button")}</a></p>
<p style="margin:0 0 12px;color:#555c68;font-size:14px">${expires}</p>
<p style="margin:0;color:#555c68;font-size:13px;overflow-wrap:anywhere">${input.link}</p>
${supportHref === null ? null : html`<p style="margin:20px 0 0;color:#555c68;font-size:13px">${t.html("footer.help", { contact: html`<a href="${supportHref}" style="color:#224455">${brand.support}</a>` })}</p>`}
</div>
</body></html>`;
  return { subject: t.text("mail.subject"), text, html: body.value };
}
