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
}

/** Applies a change; a user is announced on their first connection and gone with their last. */
export const applyPresenceChange = (presence: TopicPresence, change: PresenceChange): PresenceDelta => {
  const joined: unknown[] = []
  const left: unknown[] = []
  let joining: Set<string> | undefined
  for (const member of change.join ?? []) {
    if (presence.connections.has(member.connectionId)) continue
    presence.connections.set(member.connectionId, member)
    const count = presence.users.get(member.userId) ?? 0
    presence.users.set(member.userId, count + 1)
    if (count === 0) {
      joined.push(member.info)
      joining ??= new Set()
      joining.add(member.connectionId)
    }
  }
  for (const member of change.leave ?? []) {
    if (!presence.connections.delete(member.connectionId)) continue
    const count = (presence.users.get(member.userId) ?? 1) - 1
    if (count > 0) presence.users.set(member.userId, count)
    else {
      presence.users.delete(member.userId)
      left.push(member.info)
    }
  }
  return { joined, joining, left }
}

/**
 * The connections a change will really add and remove (what it repeats left out), or undefined when
 * none: asked before `applyPresenceChange`, and only by who needs it (`hub.listen`).
 */
export const connectionsChanged = (
  presence: TopicPresence,
  change: PresenceChange,
): PresenceChange | undefined => {
  // As applyPresenceChange goes: joins first (each connection once), then leaves of who is there.
  const joined = new Map<string, PresenceMember>()
  for (const member of change.join ?? [])
    if (!presence.connections.has(member.connectionId) && !joined.has(member.connectionId))
      joined.set(member.connectionId, member)
  const leave: PresenceMember[] = []
  for (const member of change.leave ?? []) {
    const present = presence.connections.get(member.connectionId) ?? joined.get(member.connectionId)
    if (present && !leave.includes(present)) leave.push(present)
  }
  if (joined.size === 0 && leave.length === 0) return undefined
  return {
    topic: change.topic,
    ...(joined.size > 0 && { join: [...joined.values()] }),
    ...(leave.length > 0 && { leave }),
  }
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
