import type { Peer } from '@flumen/core'

/** How one connection appears in presence: `id` counts a user once, `info` is what others see. */
export interface Identity {
  readonly id: string
  readonly info: unknown
}

/** What the hub keeps of one attached connection. */
export interface PeerState<User> {
  readonly peer: Peer<User>
  /** What authentication put in `c.var.user`, or what an `auth` message replaced it with. */
  user: User
  readonly identity: Identity
  /** Topics subscribed, or reserved while their subscribe is being authorized. */
  readonly topics: Set<string>
  closed: boolean
  /** When the connection was attached (ms since the epoch). */
  readonly attachedAt: number
}
