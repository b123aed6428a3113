import type { Config } from "../config";

/**
 * Who may get an account at their first sign-in (SIGNUP_POLICY). Pure; an address that already has an account may
 * always sign in — the policy decides only whether a new one is made.
 * - `open`: anyone who can receive the email;
 * - `domains`: addresses at one of SIGNUP_DOMAINS (the exact domain: example.com does not admit a.example.com);
 * - `invite`: nobody — only users an admin created (POST /admin/users) may sign in.
 */
export function mayCreateAccount(config: Pick<Config, "signupPolicy" | "signupDomains">, email: string): boolean {
  switch (config.signupPolicy) {
    case "open":
      return true;
    case "invite":
      return false;
    case "domains": {
      const domain = email.slice(email.lastIndexOf("@") + 1).toLowerCase();
      return config.signupDomains.split(",").includes(domain);
    }
  }
}
