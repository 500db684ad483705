import type { StreamPosition } from '@flumen/core'

/**
 * Idempotency keys of one topic's recent publishes: a publish whose key is here (under the same
 * epoch) is the same publish again, a client's retry after a lost ack, and gets the first one's
 * position instead of being stored twice. Keys expire after `windowMs`; at most `maxKeys` are kept
 * (the oldest go first). Keys arrive in time order, so expiry only looks at the front.
 */
export class DedupeWindow {
  private readonly keys = new Map<string, { readonly position: StreamPosition; readonly at: number }>()

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  get size(): number {
    return this.keys.size
  }

  /** The position the key was published at, when it was within the window and under `epoch`. */
  find(key: string, epoch: string, now: number): StreamPosition | undefined {
    this.expire(now)
    const entry = this.keys.get(key)
    return entry && entry.position.epoch === epoch ? entry.position : undefined
  }

  remember(key: string, position: StreamPosition, now: number): void {
    this.keys.delete(key)
    this.keys.set(key, { position, at: now })
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!)
  }

  expire(now: number): void {
    for (const [key, entry] of this.keys) {
      if (now - entry.at <= this.windowMs) return
      this.keys.delete(key)
    }
  }
}
