// Presence of one topic on this node: connections present and how many each user has, kept
// idempotent by connection id, so an engine may report a change this node already applied.
import type { PresenceChange, PresenceMember } from './engine.js'

/** The presence part of a topic's state. */
export interface TopicPresence {
  /** Connections present, by connection id. */
  readonly connections: Map<string, PresenceMember>
  /** Connections per user id. */
  readonly users: Map<string, number>
}

/** What a change did: users who came (and the connections that brought them) and users who left. */
export interface PresenceDelta {
  readonly joined: unknown[]
  /** Connections whose join made their user appear: they get the member list, not their own join. */
  readonly joining: ReadonlySet<string> | undefined
  readonly left: unknown[]
  /** The connections that actually came and went (a change applied before is not repeated). */
  readonly connections: { readonly join?: PresenceMember[]; readonly leave?: PresenceMember[] }
}

/** Applies a change; a user is announced on their first connection and gone with their last. */
export const applyPresenceChange = (presence: TopicPresence, change: PresenceChange): PresenceDelta => {
  const joined: unknown[] = []
  const left: unknown[] = []
  let joining: Set<string> | undefined
  const came: PresenceMember[] = []
  const went: PresenceMember[] = []
  for (const member of change.join ?? []) {
    if (presence.connections.has(member.connectionId)) continue
    presence.connections.set(member.connectionId, member)
    came.push(member)
    const count = presence.users.get(member.userId) ?? 0
    presence.users.set(member.userId, count + 1)
    if (count === 0) {
      joined.push(member.info)
      joining ??= new Set()
      joining.add(member.connectionId)
    }
  }
  for (const member of change.leave ?? []) {
    const present = presence.connections.get(member.connectionId)
    if (!present) continue
    presence.connections.delete(member.connectionId)
    went.push(present)
    const count = (presence.users.get(member.userId) ?? 1) - 1
    if (count > 0) presence.users.set(member.userId, count)
    else {
      presence.users.delete(member.userId)
      left.push(member.info)
    }
  }
  const connections = {
    ...(came.length > 0 && { join: came }),
    ...(went.length > 0 && { leave: went }),
  }
  return { joined, joining, left, connections }
}

/** One entry per user (the info of their first connection), in order of arrival. */
export const membersByUser = (members: Iterable<PresenceMember>): unknown[] => {
  const byUser = new Map<string, unknown>()
  for (const member of members) if (!byUser.has(member.userId)) byUser.set(member.userId, member.info)
  return [...byUser.values()]
}

/** `{"type":"presence",…}` for a topic: a join, a leave, or the member list. */
export const presenceEnvelope = (
  topicJson: string,
  kind: 'join' | 'leave' | 'members',
  infos: readonly unknown[],
): string => `{"type":"presence","topic":${topicJson},"${kind}":${JSON.stringify(infos)}}`
