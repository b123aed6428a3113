import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { base64url, base64urlDecode, randomToken } from "../../src/lib/crypto";

/**
 * A software WebAuthn authenticator for the workerd tests: ES256 (P-256) keys in WebCrypto, "none" attestation, real
 * CBOR, real authenticator data and real signatures — what a browser with a platform authenticator sends, built
 * byte by byte, so every part can also be made wrong on purpose (origin, RP ID, challenge, counter, flags).
 * The real-browser test (tests/e2e/passkeys-browser.test.ts) uses Chromium's own virtual authenticator instead.
 */

// ── CBOR (RFC 8949), the little COSE and attestation objects need ──

type Cbor = number | string | Uint8Array | Cbor[] | Map<number | string, Cbor>;

function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 0x100) return [(major << 5) | 24, n];
  if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
  return [(major << 5) | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

export function cbor(value: Cbor): Uint8Array {
  const out: number[] = [];
  const write = (v: Cbor): void => {
    if (typeof v === "number") {
      if (v >= 0) out.push(...head(0, v));
      else out.push(...head(1, -1 - v));
    } else if (typeof v === "string") {
      const bytes = new TextEncoder().encode(v);
      out.push(...head(3, bytes.length), ...bytes);
    } else if (v instanceof Uint8Array) {
      out.push(...head(2, v.length), ...v);
    } else if (Array.isArray(v)) {
      out.push(...head(4, v.length));
      v.forEach(write);
    } else {
      out.push(...head(5, v.size));
      for (const [k, item] of v) {
        write(k);
        write(item);
      }
    }
  };
  write(value);
  return new Uint8Array(out);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
}

/** WebCrypto's raw r‖s ECDSA signature as the DER SEQUENCE WebAuthn carries (RFC 3279 §2.2.3). */
function derSignature(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let body: Uint8Array = bytes.slice(i);
    if (body[0]! & 0x80) body = concat(new Uint8Array([0]), body);
    return concat(new Uint8Array([0x02, body.length]), body);
  };
  const seq = concat(integer(raw.slice(0, 32)), integer(raw.slice(32)));
  return concat(new Uint8Array([0x30, seq.length]), seq);
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

interface Credential {
  id: string;
  keys: CryptoKeyPair;
  rpId: string;
  userHandle: string;
  counter: number;
}

/** What a test may change in a ceremony: every field a server must check. */
export interface Tamper {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  /** The signature counter to send (an assertion); by default the authenticator's own, incremented. */
  counter?: number;
  userVerified?: boolean;
  userHandle?: string | null;
  /** Replace clientDataJSON with these bytes (base64url) as sent. */
  clientDataJSON?: string;
  /** Sign with another key (a forged assertion). */
  forgeSignature?: boolean;
  /** Register under this credential id (e.g. one another user has). */
  credentialId?: string;
}

export class SoftAuthenticator {
  readonly credentials = new Map<string, Credential>();

  constructor(
    readonly origin: string,
    readonly options: { userVerified?: boolean; synced?: boolean; counts?: boolean } = {},
  ) {}

  private clientData(type: string, challenge: string, tamper: Tamper): string {
    if (tamper.clientDataJSON !== undefined) return tamper.clientDataJSON;
    const json = JSON.stringify({ type: tamper.type ?? type, challenge: tamper.challenge ?? challenge, origin: tamper.origin ?? this.origin, crossOrigin: false });
    return base64url(new TextEncoder().encode(json));
  }

  private flags(tamper: Tamper, extra = 0): number {
    const uv = tamper.userVerified ?? this.options.userVerified ?? true;
    const synced = this.options.synced ? FLAG_BE | FLAG_BS : 0;
    return FLAG_UP | (uv ? FLAG_UV : 0) | synced | extra;
  }

  /** navigator.credentials.create(): a new ES256 credential for the options' RP and user, with "none" attestation. */
  async create(options: PublicKeyCredentialCreationOptionsJSON, tamper: Tamper = {}): Promise<RegistrationResponseJSON> {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const jwk = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as JsonWebKey;
    const cose = cbor(
      new Map<number, Cbor>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, base64urlDecode(jwk.x!)],
        [-3, base64urlDecode(jwk.y!)],
      ]),
    );
    const idBytes = base64urlDecode(tamper.credentialId ?? randomToken(32));
    const id = base64url(idBytes);
    const rpId = tamper.rpId ?? options.rp.id!;
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      new Uint8Array([this.flags(tamper, FLAG_AT)]),
      u32(0),
      new Uint8Array(16),
      new Uint8Array([idBytes.length >> 8, idBytes.length & 0xff]),
      idBytes,
      cose,
    );
    const attestationObject = cbor(new Map<string, Cbor>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]));
    this.credentials.set(id, { id, keys, rpId: options.rp.id!, userHandle: options.user.id, counter: 0 });
    return {
      id,
      rawId: id,
      type: "public-key",
      response: {
        clientDataJSON: this.clientData("webauthn.create", options.challenge, tamper),
        attestationObject: base64url(attestationObject),
        transports: ["internal", "hybrid"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  /** A credential of this authenticator (the only one, unless an id is given). */
  credential(id?: string): Credential {
    const credential = id === undefined ? [...this.credentials.values()][0] : this.credentials.get(id);
    if (!credential) throw new Error("no such credential on this authenticator");
    return credential;
  }

  /** navigator.credentials.get(): an assertion by a discoverable credential (the user handle is sent). */
  async get(options: PublicKeyCredentialRequestOptionsJSON, tamper: Tamper = {}, credentialId?: string): Promise<AuthenticationResponseJSON> {
    const credential = this.credential(credentialId);
    if (tamper.counter === undefined && this.options.counts !== false) credential.counter += 1;
    const counter = tamper.counter ?? (this.options.counts === false ? 0 : credential.counter);
    const authData = concat(await sha256(new TextEncoder().encode(tamper.rpId ?? credential.rpId)), new Uint8Array([this.flags(tamper)]), u32(counter));
    const clientDataJSON = this.clientData("webauthn.get", options.challenge, tamper);
    const signed = concat(authData, await sha256(base64urlDecode(clientDataJSON)));
    const key = tamper.forgeSignature
      ? ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])) as CryptoKeyPair).privateKey
      : credential.keys.privateKey;
    const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, signed));
    const response: AuthenticationResponseJSON = {
      id: credential.id,
      rawId: credential.id,
      type: "public-key",
      response: { clientDataJSON, authenticatorData: base64url(authData), signature: base64url(derSignature(raw)) },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
    const handle = tamper.userHandle === undefined ? credential.userHandle : tamper.userHandle;
    if (handle !== null) response.response.userHandle = handle;
    return response;
  }
}
