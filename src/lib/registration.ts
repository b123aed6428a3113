/**
 * RFC 9700 §4.14: a grant belongs to the registration of its client it was made under. Deleting a client and
 * registering its client_id again (a new `registered_at`) leaves every older grant dead — no index of grants needed.
 * A grant stored before grants recorded their registration is dead when it is older than the registration. Pure:
 * the grant's object applies it inside its transaction, the token rule (oauth/token-validity.ts) everywhere else.
 */
export function madeUnderEarlierRegistration(grant: { createdAt: number; clientRegisteredAt: number | null }, registeredAt: number): boolean {
  return grant.clientRegisteredAt !== null ? grant.clientRegisteredAt !== registeredAt : grant.createdAt < registeredAt;
}
