import { SingleUseResourceStore } from "./single-use-store";

/** Where a jti was presented: a DPoP proof (RFC 9449 §11.1) or a client assertion (RFC 7523 §3, item 7). */
export interface JtiUse {
  htm?: string;
  htu?: string;
}

/**
 * jtis of signed one-time proofs, accepted once within their validity window (C10). The jti is stored and claimed
 * in one step: the first presentation stores it, any later one within the window finds it taken.
 * `scope` keeps issuers apart (`dpop:<jkt>`, `client_assertion:<client_id>`) so one cannot burn another's jtis.
 */
export class JtiStore extends SingleUseResourceStore<JtiUse> {
  protected readonly source = "jti";
  protected override readonly auditReplays = false;

  /** True the first time (scope, jti) is presented within `windowSeconds`; false for a replay. */
  async recordJti(scope: string, jti: string, use: JtiUse, windowSeconds: number): Promise<boolean> {
    const id = `${scope}.${jti}`;
    // A row past its window but not yet purged is no longer a replay; the delete and the insert run with no await between.
    this.transact(() => this.sql.exec(`DELETE FROM entries WHERE id = ? AND expires_at <= ?`, id, this.now()));
    const { stored } = await this.put(id, use, windowSeconds);
    return stored;
  }
}
