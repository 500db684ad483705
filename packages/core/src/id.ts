import { randomFillSync } from 'node:crypto'

// Ids come out of a pooled random buffer, 12 bytes (96 bits) each, encoded base64url: a flat
// 16-character string. crypto.randomUUID() returns a rope of a dozen string pieces that every
// connection would keep for its lifetime (about 450 bytes instead of 28).
const idBytes = 12
const pool = Buffer.allocUnsafe(idBytes * 256)
let offset = pool.length

/** A random, URL-safe, 16-character id for a peer, an upload or anything else short-lived. */
export const createId = (): string => {
  if (offset === pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const id = pool.toString('base64url', offset, offset + idBytes)
  offset += idBytes
  return id
}
