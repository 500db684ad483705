import type { Context } from 'hono'

/**
 * The credential expiry authentication put on this request (`c.var.authExpiresAt`, ms since the
 * epoch), if any: a WebSocket or SSE connection opened by the request ends then unless it is
 * extended (`peer.expiresAt`).
 */
export const credentialExpiry = (c: Context): number | undefined => {
  const at = (c.var as Record<string, unknown>).authExpiresAt
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined
}

// setTimeout takes at most 2^31-1 ms (about 24.8 days); a later deadline re-arms on the way.
const maxDelayMs = 2 ** 31 - 1

/**
 * One deadline per connection: `onExpire` runs once when `expiresAt` passes. Setting a new time
 * (a refreshed token) moves it; `undefined` cancels it. The timer never keeps the process alive.
 */
export class ExpiryTimer {
  private timer: NodeJS.Timeout | undefined
  private at: number | undefined

  constructor(private readonly onExpire: () => void) {}

  get expiresAt(): number | undefined {
    return this.at
  }

  set expiresAt(at: number | undefined) {
    if (at !== undefined && !Number.isFinite(at))
      throw new TypeError('expiresAt must be a finite time in milliseconds since the epoch, or undefined')
    this.clear()
    this.at = at
    if (at !== undefined) this.arm()
  }

  /** Stops the timer (the connection closed). */
  clear(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm(): void {
    const at = this.at
    if (at === undefined) return
    const delay = at - Date.now()
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        if (Date.now() >= at) {
          this.at = undefined
          this.onExpire()
        } else this.arm()
      },
      Math.min(Math.max(delay, 0), maxDelayMs),
    )
    this.timer.unref()
  }
}
