import { randomToken } from "../lib/crypto";

/**
 * Identifiers of single-use values carry their shard: `<shard>.<random>`. The endpoint that consumes a value
 * finds its object from the value itself, with no lookup and no global object on the hot path.
 */
const SHARDED_ID = /^([0-9a-z]{1,4})\.([A-Za-z0-9_-]{16,128})$/;

export function newShardedId(shardCount: number, entropyBytes = 32): string {
  const shard = crypto.getRandomValues(new Uint32Array(1))[0]! % shardCount;
  return `${shard.toString(36)}.${randomToken(entropyBytes)}`;
}

/** The shard named by an identifier, or null when the identifier is not one of ours (hostile input never reaches an object). */
export function shardOfId(id: string, shardCount: number): string | null {
  const match = SHARDED_ID.exec(id);
  if (!match) return null;
  const shard = parseInt(match[1]!, 36);
  return shard < shardCount ? String(shard) : null;
}

/** FNV-1a: a stable shard for identifiers chosen by others (DPoP jtis, rate-limit keys). Not a security boundary. */
export function shardOfKey(key: string, shardCount: number): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return String(hash % shardCount);
}
