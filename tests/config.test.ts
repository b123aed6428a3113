import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ConfigError, SETTINGS, issuerOf, loadConfig, readSettings, type Config } from "../src/config";
import type { Env } from "../src/env";

/** The problems of one set of vars, as one-line messages. */
function messages(vars: Record<string, unknown>): string[] {
  return readSettings(vars).problems.map((p) => p.message);
}

const spec = (name: string) => SETTINGS.find((s) => s.name === name)!;

describe("settings: every one has a rule, and a broken rule says which setting, its value and what is allowed", () => {
  it("the one message shape: NAME=value: must …", () => {
    expect(messages({ AUTH_CODE_TTL: "abc" })).toEqual(["AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600"]);
  });

  it("unset or empty means the default; the defaults are valid", () => {
    const { config, problems } = readSettings({});
    expect(problems).toEqual([]);
    expect(readSettings(Object.fromEntries(SETTINGS.map((s) => [s.name, ""])))).toEqual({ config, problems: [] });
    for (const s of SETTINGS) expect(config[s.key], s.name).toBe(s.default);
    expect(config).toMatchObject({ authCodeTtl: 60, issuer: "", emailTransport: "dev", defaultSigningAlg: "RS256", shardCount: 16 });
  });

  it("every field of Config is a setting named after it (authCodeTtl → AUTH_CODE_TTL), and the test Worker's settings are valid", () => {
    const config: Config = loadConfig(env);
    expect(SETTINGS.map((s) => s.key).sort()).toEqual(Object.keys(config).sort());
    for (const s of SETTINGS) expect(s.name).toBe(s.key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase());
    for (const s of SETTINGS) expect(s.rule, s.name).toMatch(/^must /);
  });

  it("whole numbers within each setting's bounds: the bounds pass, one past them and anything not a plain whole number do not", () => {
    for (const s of SETTINGS.filter((x) => typeof x.default === "number")) {
      const bounds = /between (\d+) and (\d+)/.exec(s.rule);
      expect(bounds, s.name).not.toBeNull();
      const [min, max] = [Number(bounds![1]), Number(bounds![2])];
      expect(readSettings({ [s.name]: String(min) }).config[s.key], s.name).toBe(min);
      expect(readSettings({ [s.name]: String(max) }).config[s.key], s.name).toBe(max);
      expect(messages({ [s.name]: String(max + 1) }), s.name).toEqual([`${s.name}=${max + 1}: ${s.rule}`]);
      if (min > 0 && !s.rule.startsWith("must be 0 ")) expect(messages({ [s.name]: String(min - 1) }), s.name).toEqual([`${s.name}=${min - 1}: ${s.rule}`]);
      for (const bad of ["abc", "-1", "1.5", "1e3", "0x10", " 60", "60s", "9".repeat(20)]) {
        expect(readSettings({ [s.name]: bad }).problems.map((p) => p.setting), `${s.name}=${bad}`).toEqual([s.name]);
      }
    }
  });

  it("chosen bounds, as the docs state them", () => {
    expect(spec("AUTH_CODE_TTL").rule).toBe("must be a whole number of seconds between 10 and 600");
    expect(spec("ACCESS_TOKEN_TTL").rule).toBe("must be a whole number of seconds between 60 and 86400");
    expect(spec("SHARD_COUNT").rule).toBe("must be a whole number between 1 and 1024");
    expect(spec("RATE_LIMIT_LOGIN").rule).toBe("must be a whole number of requests between 0 and 1000000");
    expect(spec("AUDIT_RETENTION_DAYS").rule).toBe("must be a whole number of days between 1 and 3650");
  });

  it("0 turns key rotation off; any other value must be a sensible interval", () => {
    expect(readSettings({ KEY_ROTATION_INTERVAL: "0" })).toMatchObject({ problems: [], config: { keyRotationInterval: 0 } });
    expect(messages({ KEY_ROTATION_INTERVAL: "60" })).toEqual([
      "KEY_ROTATION_INTERVAL=60: must be 0 (no automatic rotation) or a whole number of seconds between 3600 and 31536000",
    ]);
  });

  it("a JSON var (a number in wrangler.jsonc vars) counts as its text", () => {
    expect(readSettings({ AUTH_CODE_TTL: 120 })).toMatchObject({ problems: [], config: { authCodeTtl: 120 } });
    expect(messages({ AUTH_CODE_TTL: 12.5 })).toEqual(["AUTH_CODE_TTL=12.5: must be a whole number of seconds between 10 and 600"]);
    expect(messages({ AUTH_CODE_TTL: true })).toEqual(["AUTH_CODE_TTL=true: must be a whole number of seconds between 10 and 600"]);
  });

  it("choices", () => {
    expect(messages({ EMAIL_TRANSPORT: "smtp" })).toEqual(["EMAIL_TRANSPORT=smtp: must be dev or http"]);
    expect(messages({ DEFAULT_SIGNING_ALG: "HS256" })).toEqual(["DEFAULT_SIGNING_ALG=HS256: must be RS256 or ES256"]);
    expect(readSettings({ DEFAULT_SIGNING_ALG: "ES256" }).config.defaultSigningAlg).toBe("ES256");
  });

  it("an odd value is quoted in the message, a long one cut", () => {
    expect(messages({ AUTH_CODE_TTL: " 60 " })).toEqual(['AUTH_CODE_TTL=" 60 ": must be a whole number of seconds between 10 and 600']);
    expect(messages({ EMAIL_TRANSPORT: "x".repeat(500) })[0]!.length).toBeLessThan(140);
  });

  it("every broken rule is reported at once, and loadConfig throws them as one ConfigError", () => {
    const bad = { ...env, AUTH_CODE_TTL: "abc", EMAIL_TRANSPORT: "smtp" } as Env;
    let thrown: unknown;
    try {
      loadConfig(bad);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems.map((p) => p.setting)).toEqual(["EMAIL_TRANSPORT", "AUTH_CODE_TTL"]);
    expect((thrown as ConfigError).message).toBe(
      "EMAIL_TRANSPORT=smtp: must be dev or http; AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600",
    );
  });
});

describe("ISSUER: an https origin, written exactly as RPs compare it (http only on loopback)", () => {
  it("accepts origins", () => {
    for (const ok of ["https://id.example.com", "https://id.example.com:8443", "https://localhost", "http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"]) {
      expect(readSettings({ ISSUER: ok }), ok).toEqual({ config: expect.objectContaining({ issuer: ok }), problems: [] });
    }
  });

  it("refuses what is not an https origin, saying what to write instead", () => {
    const rule = spec("ISSUER").rule;
    expect(rule).toBe(
      "must be an https origin such as https://id.example.com (http only on localhost, 127.0.0.1 or [::1]): no path, no trailing /, no query, fragment or user info",
    );
    const cases: Array<[string, string]> = [
      ["id.example.com", `ISSUER=id.example.com: ${rule}`],
      ["ftp://id.example.com", "ISSUER=ftp://id.example.com: must use https (http only on localhost, 127.0.0.1 or [::1])"],
      ["http://id.example.com", "ISSUER=http://id.example.com: must use https (http only on localhost, 127.0.0.1 or [::1])"],
      ["http://127.0.0.2", "ISSUER=http://127.0.0.2: must use https (http only on localhost, 127.0.0.1 or [::1])"],
      ["https://id.example.com/", "ISSUER=https://id.example.com/: must be written as its bare origin, https://id.example.com (no trailing /, default port or capitals)"],
      ["https://ID.example.com", "ISSUER=https://ID.example.com: must be written as its bare origin, https://id.example.com (no trailing /, default port or capitals)"],
      ["https://id.example.com:443", "ISSUER=https://id.example.com:443: must be written as its bare origin, https://id.example.com (no trailing /, default port or capitals)"],
      ["https://id.example.com/oidc", "ISSUER=https://id.example.com/oidc: must be an origin only, with no path, query or fragment: https://id.example.com"],
      ["https://id.example.com/oidc/", "ISSUER=https://id.example.com/oidc/: must be an origin only, with no path, query or fragment: https://id.example.com"],
      ["https://id.example.com#top", "ISSUER=https://id.example.com#top: must be an origin only, with no path, query or fragment: https://id.example.com"],
      ["https://id.example.com?", "ISSUER=https://id.example.com?: must be an origin only, with no path, query or fragment: https://id.example.com"],
    ];
    for (const [value, message] of cases) expect(messages({ ISSUER: value }), value).toEqual([message]);
  });

  it("user info is refused and never shown; neither is a query", () => {
    const [line] = messages({ ISSUER: "https://admin:hunter2@id.example.com" });
    expect(line).toBe("ISSUER=https://***@id.example.com/: must not hold user info (user:password@)");
    expect(messages({ ISSUER: "https://id.example.com?key=hunter2" })[0]).not.toContain("hunter2");
  });

  it("issuerOf: the configured issuer whatever the Host; without one, only a loopback origin is used, anything else is refused", () => {
    const configured = { ...env, ISSUER: "https://id.example.com" } as Env;
    expect(issuerOf(configured, new Request("https://attacker.example/login"))).toBe("https://id.example.com");
    expect(issuerOf(env, new Request("http://localhost:8787/login"))).toBe("http://localhost:8787");
    expect(issuerOf(env, new Request("http://[::1]:8787/login"))).toBe("http://[::1]:8787");
    for (const forged of ["https://attacker.example/login", "http://localhost.attacker.example/", "http://127.0.0.2/"]) {
      expect(() => issuerOf(env, new Request(forged)), forged).toThrow(ConfigError);
    }
  });
});

describe("secrets and email settings", () => {
  it("ADMIN_TOKEN: empty (admin API off) or a token of at least 32 characters; its value is never in a message", () => {
    expect(readSettings({ ADMIN_TOKEN: "x".repeat(32) }).problems).toEqual([]);
    const lines = [
      ...messages({ ADMIN_TOKEN: "short-secret" }),
      ...messages({ ADMIN_TOKEN: "secret-of-31-characters-xxxxxxx" }),
      ...messages({ ADMIN_TOKEN: "has spaces in the secret token, long enough" }),
    ];
    const rule = "must be empty (admin API off) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / =";
    expect(lines).toEqual([
      `ADMIN_TOKEN=(hidden, 12 characters): ${rule}`,
      `ADMIN_TOKEN=(hidden, 31 characters): ${rule}`,
      `ADMIN_TOKEN=(hidden, 43 characters): ${rule}`,
    ]);
    expect(lines.join()).not.toContain("secret");
  });

  it("ADMIN_TOKEN_NEXT: a second token of the same rule, only beside ADMIN_TOKEN; hidden", () => {
    const token = "a".repeat(40);
    expect(readSettings({ ADMIN_TOKEN: token, ADMIN_TOKEN_NEXT: "b".repeat(40) }).problems).toEqual([]);
    expect(messages({ ADMIN_TOKEN_NEXT: "b".repeat(40) })).toEqual([
      "ADMIN_TOKEN_NEXT=(hidden, 40 characters): must be empty while ADMIN_TOKEN is empty (it is the token that comes next)",
    ]);
    expect(messages({ ADMIN_TOKEN: token, ADMIN_TOKEN_NEXT: "short" })).toEqual([
      "ADMIN_TOKEN_NEXT=(hidden, 5 characters): must be empty (no second token) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / =; only with ADMIN_TOKEN set",
    ]);
  });

  it("SIGNUP_POLICY and SIGNUP_DOMAINS: domains needs its list, which is normalised", () => {
    expect(readSettings({ SIGNUP_POLICY: "invite" }).problems).toEqual([]);
    expect(messages({ SIGNUP_POLICY: "closed" })).toEqual(["SIGNUP_POLICY=closed: must be open, domains or invite"]);
    expect(messages({ SIGNUP_POLICY: "domains" })).toEqual(["SIGNUP_DOMAINS=: must be set when SIGNUP_POLICY=domains"]);
    const { config, problems } = readSettings({ SIGNUP_POLICY: "domains", SIGNUP_DOMAINS: " Example.COM, example.org,example.com" });
    expect(problems).toEqual([]);
    expect(config.signupDomains).toBe("example.com,example.org");
    for (const bad of ["example", "@example.com", "exa mple.com", "example.com,", "*.example.com", "-a.example.com"]) {
      expect(readSettings({ SIGNUP_DOMAINS: bad }).problems.map((p) => p.setting), bad).toEqual(["SIGNUP_DOMAINS"]);
    }
  });

  it("DYNAMIC_REGISTRATION: off by default; token needs INITIAL_ACCESS_TOKEN (hidden, 32 characters or more)", () => {
    expect(readSettings({}).config.dynamicRegistration).toBe("off");
    expect(readSettings({ DYNAMIC_REGISTRATION: "open" }).problems).toEqual([]);
    expect(messages({ DYNAMIC_REGISTRATION: "token" })).toEqual(["INITIAL_ACCESS_TOKEN=: must be set when DYNAMIC_REGISTRATION=token"]);
    expect(messages({ DYNAMIC_REGISTRATION: "token", INITIAL_ACCESS_TOKEN: "too-short-secret" })).toEqual([
      "INITIAL_ACCESS_TOKEN=(hidden, 16 characters): must be empty (none) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / =; required when DYNAMIC_REGISTRATION=token",
    ]);
    expect(readSettings({ DYNAMIC_REGISTRATION: "token", INITIAL_ACCESS_TOKEN: "i".repeat(32) }).problems).toEqual([]);
  });

  it("EMAIL_TRANSPORT=http needs EMAIL_API_URL (https, or http on loopback) and EMAIL_API_KEY (hidden)", () => {
    expect(messages({ EMAIL_TRANSPORT: "http" })).toEqual([
      "EMAIL_API_URL=: must be set when EMAIL_TRANSPORT=http",
      "EMAIL_API_KEY=: must be set when EMAIL_TRANSPORT=http",
    ]);
    expect(readSettings({ EMAIL_TRANSPORT: "http", EMAIL_API_URL: "https://api.resend.com/emails", EMAIL_API_KEY: "re_123" }).problems).toEqual([]);
    expect(readSettings({ EMAIL_TRANSPORT: "http", EMAIL_API_URL: "http://127.0.0.1:9999/send", EMAIL_API_KEY: "k" }).problems).toEqual([]);
    expect(messages({ EMAIL_API_URL: "http://mail.example/send" })).toEqual([
      "EMAIL_API_URL=http://mail.example/send: must use https (http only on localhost, 127.0.0.1 or [::1])",
    ]);
    expect(messages({ EMAIL_API_URL: "https://user:pw-secret@mail.example/send?key=k-secret" })).toEqual([
      "EMAIL_API_URL=https://***@mail.example/send?***: must not hold user info (user:password@)",
    ]);
    expect(messages({ EMAIL_API_KEY: "key with spaces" })).toEqual([
      "EMAIL_API_KEY=(hidden, 15 characters): must be at most 1024 visible ASCII characters (no spaces); required when EMAIL_TRANSPORT=http",
    ]);
  });

  it("EMAIL_FROM: an address, or Name <address>; nothing that could add a header", () => {
    for (const ok of ["no-reply@localhost", "login@op.example", "Example ID <login@op.example>"]) expect(messages({ EMAIL_FROM: ok }), ok).toEqual([]);
    for (const bad of ["not an address", "a@b\r\nBcc: c@d", "Name <a@b", "<a@b>", "a@-b.example"]) {
      expect(readSettings({ EMAIL_FROM: bad }).problems.map((p) => p.setting), bad).toEqual(["EMAIL_FROM"]);
    }
  });
});
