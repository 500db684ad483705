import type { Peer } from './peer.js'

/** What a client asks of a hub: to subscribe to a topic, publish to it, or call a method. */
export type HubAction = 'subscribe' | 'publish' | 'call'

/**
 * What an authorizer is asked for every operation of a client (the hub asks; `topicRules` from
 * @flumen/auth answers). `User` is what authentication put in `c.var.user`.
 */
export interface AuthorizeRequest<User = unknown> {
  /** What auth put in `c.var.user` (or what an `auth` message replaced it with). */
  readonly user: User
  readonly action: HubAction
  /** The topic, or the method name for `call`. */
  readonly topic: string
  readonly peer: Peer<User>
}

/** Decides one request: true allows it; false, a throw or a rejection refuses it (FORBIDDEN). */
export type Authorizer<User = unknown> = (request: AuthorizeRequest<User>) => boolean | Promise<boolean>
