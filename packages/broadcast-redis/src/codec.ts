// How the engine lays a topic out in Redis, and how messages and members are encoded there.
import type { EngineMessage, PresenceMember, VolatileMessage } from '@flumen/broadcast'

/** A topic's keys and channel: all share the hash tag `{topic}`, so they live in one Cluster slot. */
export interface TopicKeys {
  /** Hash: `e` epoch, `o` last offset, `f` oldest offset kept, `z` bytes kept. */
  readonly meta: string
  /** Stream of the kept messages, entry ids `<offset>-1`. */
  readonly stream: string
  /** List of the kept messages' sizes, oldest first (for trimming by bytes). */
  readonly sizes: string
  /** Hash of the present connections: connection id → stored member. */
  readonly presence: string
  /** The (sharded) pub/sub channel of the topic's messages and presence changes. */
  readonly channel: string
}

export const topicKeys = (prefix: string, topic: string): TopicKeys => {
  const base = `${prefix}{${topic}}`
  return {
    meta: `${base}:m`,
    stream: `${base}:s`,
    sizes: `${base}:z`,
    presence: `${base}:p`,
    channel: base,
  }
}

/** The key remembering one idempotency key of a topic's publishes (in the topic's slot). */
export const publishKeyOf = (prefix: string, topic: string, key: string): string =>
  `${prefix}{${topic}}:k:${key}`

/** The string holding one snapshot (`saveSnapshot`), in a slot of its own. */
export const snapshotKeyOf = (prefix: string, key: string): string => `${prefix}snapshot:{${key}}`

/** The sorted set of live nodes (score: when each one's heartbeat expires), one key in one slot. */
export const nodesKey = (prefix: string): string => `${prefix}{nodes}`

/** A presence member as stored: short keys, and the node that holds the connection. */
export interface StoredMember {
  c: string
  u: string
  i: unknown
  n: string
}

export const toMember = (stored: StoredMember): PresenceMember => ({
  connectionId: stored.c,
  userId: stored.u,
  info: stored.i,
})

export const storeMember = (member: PresenceMember, nodeId: string): StoredMember => ({
  c: member.connectionId,
  u: member.userId,
  i: member.info,
  n: nodeId,
})

/**
 * A message on the channel: `m|epoch|offset|origin|data` (data last: it may contain `|`). Joins and
 * leaves are `j|<member>` and `l|<member>`, volatile messages `v|origin|data`. Written by the publish and presence scripts.
 */
export const parseMessage = (topic: string, payload: string): EngineMessage | undefined => {
  const a = payload.indexOf('|', 2)
  const b = payload.indexOf('|', a + 1)
  const c = payload.indexOf('|', b + 1)
  if (a < 0 || b < 0 || c < 0) return undefined
  const epoch = payload.slice(2, a)
  const offset = Number(payload.slice(a + 1, b))
  const origin = payload.slice(b + 1, c)
  const data = payload.slice(c + 1)
  return origin ? { topic, data, epoch, offset, origin } : { topic, data, epoch, offset }
}

/** A publisher's peer id as the channel's payloads carry it (`''` for none); `|` would break them. */
export const originField = (origin: string | undefined): string => {
  if (origin?.includes('|')) throw new Error('redisEngine: origin must not contain |')
  return origin ?? ''
}

/** A volatile message on the channel: `v|origin|data` (no offset: it is never stored). */
export const volatilePayload = (origin: string, data: string): string => `v|${origin}|${data}`

export const parseVolatile = (topic: string, payload: string): VolatileMessage | undefined => {
  const a = payload.indexOf('|', 2)
  if (a < 0) return undefined
  const origin = payload.slice(2, a)
  const data = payload.slice(a + 1)
  return origin ? { topic, data, origin } : { topic, data }
}

/** A stream entry: its id and its flat [field, value, …] list. */
export type StreamEntry = [id: string, fields: string[]]

const fieldsOf = (fields: string[]): Record<string, string> => {
  const record: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
  return record
}

/** When an entry was stored (ms since the epoch). */
export const storedAt = (entry: StreamEntry): number => Number(fieldsOf(entry[1]).t)

export const entriesToMessages = (
  topic: string,
  epoch: string,
  entries: readonly StreamEntry[],
): EngineMessage[] =>
  entries.map(([id, fields]) => {
    const record = fieldsOf(fields)
    const offset = Number(id.slice(0, id.indexOf('-')))
    return record.g
      ? { topic, data: record.d!, epoch, offset, origin: record.g }
      : { topic, data: record.d!, epoch, offset }
  })
