import { SingleUseResourceStore } from "./single-use-store";

/** A pushed authorization request (RFC 9126): the validated parameters, bound to the client that pushed them (C9). */
export interface PushedAuthorizationRequest {
  clientId: string;
  params: Record<string, string>;
}

/** Nothing is recorded with a used request_uri but the fact (its tombstone makes a replay known as one, and audited). */
type NoOutcome = null;

export class ParRequestStore extends SingleUseResourceStore<PushedAuthorizationRequest, { clientId: string }, { clientId: string }, NoOutcome> {
  protected readonly source = "par_request";

  protected override verify(request: PushedAuthorizationRequest, expectation: { clientId: string }): string | null {
    return request.clientId === expectation.clientId ? null : "request_uri was pushed by another client";
  }

  protected override describe(request: PushedAuthorizationRequest) {
    return { clientId: request.clientId };
  }
}
