import { SingleUseResourceStore } from "./single-use-store";

export interface DpopProofUse {
  htm: string;
  htu: string;
}

/**
 * DPoP proof jtis seen within the proof validity window (RFC 9449 §11.1, C10). A jti is stored and consumed in one
 * step: the first use stores it, any later use within the window finds a tombstone.
 */
export class DpopJtiStore extends SingleUseResourceStore<DpopProofUse> {
  protected readonly source = "dpop_jti";
  protected override readonly auditReplays = false;

  /** True the first time (jkt, jti) is presented within `windowSeconds`; false for a replay. */
  async recordProofJti(jkt: string, jti: string, use: DpopProofUse, windowSeconds: number): Promise<boolean> {
    const id = `${jkt}.${jti}`;
    // A row past its window but not yet purged is no longer a replay; the delete and the insert run with no await between.
    this.transact(() => this.sql.exec(`DELETE FROM entries WHERE id = ? AND expires_at <= ?`, id, this.now()));
    const { stored } = await this.put(id, use, windowSeconds);
    return stored;
  }
}
