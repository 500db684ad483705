import type {
  Engine,
  EngineListener,
  EngineMessage,
  HistoryOptions,
  HistoryResult,
  PresenceMember,
  StreamPosition,
} from '@flumen/broadcast'
import { createId, FlumenError } from '@flumen/core'
import { Redis } from 'ioredis'

export interface RedisEngineOptions {
  /** Redis URL, e.g. `redis://127.0.0.1:6379/0`. Ignored when `client` is given. */
  url?: string
  /**
   * An ioredis client to use for commands (a duplicate of it subscribes). The engine never
   * closes a client it was given.
   */
  client?: Redis
  /**
   * Prefix of every key and channel.
   * @default 'flumen:'
   */
  prefix?: string
  /** Per-topic history: `size` messages (default 1000), `ttlMs` age (default 600000). */
  history?: HistoryOptions
  /**
   * Keys of a topic with no publish for this long expire (its epoch with them).
   * @default 86400000 (24 h)
   */
  keyTtlMs?: number
  /**
   * A node that stops refreshing its heartbeat for this long is dead: its presence members are
   * removed (with leave events) by the other nodes within about 1.3× this time.
   * @default 10000
   */
  nodeTtlMs?: number
  /**
   * Sharded pub/sub (SPUBLISH/SSUBSCRIBE): `auto` uses it on Redis 7 and later.
   * @default 'auto'
   */
  sharded?: boolean | 'auto'
  /**
   * While Redis is unreachable, how long a publish or history read waits for it before it is
   * rejected with UNAVAILABLE.
   * @default 1000
   */
  unavailableAfterMs?: number
  /** Connection trouble and failed background work. @default console.error */
  logError?: (err: unknown) => void
}

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`redisEngine: ${name} must be a positive integer`)
  return value
}

// Publish: create the epoch if the topic has none, take the next offset, append to the stream
// (trimmed to about `size` entries), and deliver, all in one script so offsets reach every node
// in order.
// KEYS: meta hash, stream. ARGV: new epoch, data, origin, size, key ttl ms, now ms, channel, publish command.
const publishScript = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], offset .. '-1', 'd', ARGV[2], 'g', ARGV[3], 't', ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[8], ARGV[7], 'm|' .. epoch .. '|' .. offset .. '|' .. ARGV[3] .. '|' .. ARGV[2])
return {epoch, offset}
`

// History: the position and the entries after `since`, read atomically.
// KEYS: meta hash, stream. ARGV: new epoch, since offset (or -1 for none), key ttl ms.
const historyScript = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local since = tonumber(ARGV[2])
local entries = {}
if since >= 0 and since < offset then
  entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+')
end
return {epoch, offset, entries}
`

// Presence. KEYS: presence hash. ARGV: connection id, member JSON, channel, publish command.
const presenceAddScript = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call(ARGV[4], ARGV[3], 'j|' .. ARGV[2])
return 1
`
const presenceRemoveScript = `
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call(ARGV[3], ARGV[2], 'l|' .. member)
return 1
`

type ScriptRunner = (keys: string[], args: (string | number)[]) => Promise<unknown>

interface StoredMember {
  c: string
  u: string
  i: unknown
  /** The node holding the connection. */
  n: string
}

/** A stream entry's flat [field, value, …] list as a record. */
const fieldsOf = (fields: string[]): Record<string, string> => {
  const record: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
  return record
}

const toMember = (stored: StoredMember): PresenceMember => ({
  connectionId: stored.c,
  userId: stored.u,
  info: stored.i,
})

/**
 * The hub engine for many processes: messages go between nodes over Redis pub/sub (sharded on
 * Redis 7+), history and offsets live in Redis Streams so a client recovers on whichever node it
 * reconnects to, and presence lives in Redis with per-node heartbeats.
 */
export const redisEngine = (options: RedisEngineOptions = {}): Engine & { readonly nodeId: string } => {
  const prefix = options.prefix ?? 'flumen:'
  if (typeof prefix !== 'string' || /[{}\s]/.test(prefix))
    throw new Error('redisEngine: prefix must not contain braces or spaces')
  const historySize = options.history?.size ?? 1000
  if (!Number.isInteger(historySize) || historySize < 0)
    throw new Error('redisEngine: history.size must be an integer >= 0')
  const historyTtlMs = positiveInteger('history.ttlMs', options.history?.ttlMs ?? 600_000)
  const keyTtlMs = positiveInteger('keyTtlMs', options.keyTtlMs ?? 86_400_000)
  if (keyTtlMs < historyTtlMs) throw new Error('redisEngine: keyTtlMs must be at least history.ttlMs')
  const nodeTtlMs = positiveInteger('nodeTtlMs', options.nodeTtlMs ?? 10_000)
  const unavailableAfterMs = positiveInteger('unavailableAfterMs', options.unavailableAfterMs ?? 1000)
  const logError = options.logError ?? ((err: unknown) => console.error('[flumen/broadcast-redis]', err))
  const nodeId = createId()

  const ownsClient = options.client === undefined
  const redis =
    options.client ??
    new Redis(options.url ?? 'redis://127.0.0.1:6379', {
      // Commands fail at once while Redis is away: a publish is rejected, never held and lost.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      lazyConnect: false,
    })
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null })
  redis.on('error', (err) => logError(err))
  subscriber.on('error', (err) => logError(err))

  const keys = (topic: string): { meta: string; stream: string; presence: string; channel: string } => {
    const base = `${prefix}{${topic}}`
    return { meta: `${base}:m`, stream: `${base}:s`, presence: `${base}:p`, channel: base }
  }
  const nodeKey = (id: string): string => `${prefix}node:${id}`

  let listener: EngineListener | undefined
  let closed = false
  /** Topics this node subscribed to, by channel. */
  const channels = new Map<string, string>()
  /** The last message handed to the hub per topic: pub/sub and gap fills never repeat one. */
  const delivered = new Map<string, StreamPosition>()
  /** Topics being gap-filled after a reconnect: their live messages wait here. */
  const filling = new Map<string, string[]>()

  const waitReady = async (): Promise<void> => {
    if (closed) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
    if (redis.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', onReady)
        reject(new FlumenError('UNAVAILABLE', 'Redis is unavailable'))
      }, unavailableAfterMs)
      const onReady = (): void => {
        clearTimeout(timer)
        resolve()
      }
      redis.once('ready', onReady)
    })
  }

  // Sharded pub/sub on Redis 7+, found out once.
  let pubsub:
    | Promise<{
        publish: string
        subscribe: 'ssubscribe' | 'subscribe'
        unsubscribe: 'sunsubscribe' | 'unsubscribe'
      }>
    | undefined
  const pubsubCommands = (): NonNullable<typeof pubsub> => {
    pubsub ??= (async () => {
      let sharded = options.sharded ?? 'auto'
      if (sharded === 'auto') {
        await waitReady()
        const version = /redis_version:(\d+)/.exec(await redis.info('server'))?.[1]
        sharded = Number(version) >= 7
      }
      return sharded
        ? ({ publish: 'SPUBLISH', subscribe: 'ssubscribe', unsubscribe: 'sunsubscribe' } as const)
        : ({ publish: 'PUBLISH', subscribe: 'subscribe', unsubscribe: 'unsubscribe' } as const)
    })()
    pubsub.catch(() => {
      pubsub = undefined
    })
    return pubsub
  }

  const script = (lua: string, numberOfKeys: number): ScriptRunner => {
    let sha: string | undefined
    return async (scriptKeys, args) => {
      await waitReady()
      try {
        sha ??= (await redis.script('LOAD', lua)) as string
        return await redis.evalsha(sha, numberOfKeys, ...scriptKeys, ...args)
      } catch (err) {
        // A restarted Redis forgot the script: load it again once.
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
          sha = (await redis.script('LOAD', lua)) as string
          return redis.evalsha(sha, numberOfKeys, ...scriptKeys, ...args)
        }
        throw err
      }
    }
  }
  const runPublish = script(publishScript, 2)
  const runHistory = script(historyScript, 2)
  const runPresenceAdd = script(presenceAddScript, 1)
  const runPresenceRemove = script(presenceRemoveScript, 1)

  const unavailable = (err: unknown): FlumenError =>
    err instanceof FlumenError ? err : new FlumenError('UNAVAILABLE', 'Redis is unavailable', { cause: err })

  const deliver = (message: EngineMessage): void => {
    const last = delivered.get(message.topic)
    if (last && last.epoch === message.epoch && message.offset <= last.offset) return
    delivered.set(message.topic, { epoch: message.epoch, offset: message.offset })
    listener?.onMessage(message)
  }

  const parseMessage = (topic: string, payload: string): EngineMessage | undefined => {
    // m|epoch|offset|origin|data — data last, it may contain '|'.
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

  const onChannelMessage = (channel: string, payload: string): void => {
    const topic = channels.get(channel)
    if (topic === undefined || closed) return
    try {
      if (payload.startsWith('m|')) {
        const held = filling.get(topic)
        if (held) held.push(payload)
        else {
          const message = parseMessage(topic, payload)
          if (message) deliver(message)
        }
      } else if (payload.startsWith('j|') || payload.startsWith('l|')) {
        const member = toMember(JSON.parse(payload.slice(2)) as StoredMember)
        listener?.onPresence(payload[0] === 'j' ? { topic, join: [member] } : { topic, leave: [member] })
      }
    } catch (err) {
      logError(err)
    }
  }
  subscriber.on('smessage', onChannelMessage)
  subscriber.on('message', onChannelMessage)

  const entriesToMessages = (topic: string, epoch: string, entries: [string, string[]][]): EngineMessage[] =>
    entries.map(([id, fields]) => {
      const record = fieldsOf(fields)
      const offset = Number(id.slice(0, id.indexOf('-')))
      return record.g
        ? { topic, data: record.d!, epoch, offset, origin: record.g }
        : { topic, data: record.d!, epoch, offset }
    })

  type HistoryReply = [string, number, [string, string[]][]]
  const readStream = async (topic: string, since: number): Promise<HistoryReply> => {
    const k = keys(topic)
    return (await runHistory([k.meta, k.stream], [createId(), since, keyTtlMs])) as HistoryReply
  }

  /** After a reconnect: hand the hub what was published while this node could not hear it. */
  const fillGaps = async (): Promise<void> => {
    const topics = [...channels.values()]
    for (const topic of topics) filling.set(topic, [])
    for (const topic of topics) {
      try {
        const last = delivered.get(topic)
        let [epoch, , entries] = await readStream(topic, last?.offset ?? 0)
        // A new epoch (Redis lost its data): everything of the new stream is new to us.
        if (last && last.epoch !== epoch) [epoch, , entries] = await readStream(topic, 0)
        for (const message of entriesToMessages(topic, epoch, entries)) deliver(message)
      } catch (err) {
        logError(err)
      } finally {
        const held = filling.get(topic) ?? []
        filling.delete(topic)
        for (const payload of held) {
          const message = parseMessage(topic, payload)
          if (message) deliver(message)
        }
      }
    }
  }
  let subscriberReadyOnce = false
  subscriber.on('ready', () => {
    if (!subscriberReadyOnce) {
      subscriberReadyOnce = true
      return
    }
    void fillGaps()
  })

  // Heartbeat and sweep of members whose node is gone.
  const beat = async (): Promise<void> => {
    if (redis.status !== 'ready') return
    await redis.set(nodeKey(nodeId), '1', 'PX', nodeTtlMs)
    await Promise.all([...channels.values()].map(liveMembers))
  }
  const heartbeat = setInterval(() => void beat().catch(logError), Math.max(100, Math.floor(nodeTtlMs / 3)))
  heartbeat.unref()
  void waitReady()
    .then(beat)
    .catch(() => {})

  /** Members of a topic whose node is alive; members of dead nodes are removed (with leave events). */
  const liveMembers = async (topic: string): Promise<PresenceMember[]> => {
    const k = keys(topic)
    const all = await redis.hgetall(k.presence)
    const members = Object.values(all).map((value) => JSON.parse(value) as StoredMember)
    const nodes = [...new Set(members.map((member) => member.n))]
    if (nodes.length === 0) return []
    const alive = await redis.mget(...nodes.map(nodeKey))
    const aliveNodes = new Set(nodes.filter((_, i) => alive[i] !== null))
    aliveNodes.add(nodeId)
    const commands = await pubsubCommands()
    const result: PresenceMember[] = []
    for (const member of members) {
      if (aliveNodes.has(member.n)) result.push(toMember(member))
      else await runPresenceRemove([k.presence], [member.c, k.channel, commands.publish])
    }
    return result
  }

  const engine: Engine & { readonly nodeId: string } = {
    name: 'redis',
    nodeId,
    attach(next) {
      listener = next
    },
    async publish(topic, data, publishOptions = {}) {
      const k = keys(topic)
      const origin = publishOptions.origin ?? ''
      if (origin.includes('|')) throw new Error('redisEngine: origin must not contain |')
      try {
        const commands = await pubsubCommands()
        const [epoch, offset] = (await runPublish(
          [k.meta, k.stream],
          [createId(), data, origin, historySize, keyTtlMs, Date.now(), k.channel, commands.publish],
        )) as [string, number]
        return origin ? { topic, data, epoch, offset, origin } : { topic, data, epoch, offset }
      } catch (err) {
        throw unavailable(err)
      }
    },
    async subscribe(topic) {
      if (closed) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
      const k = keys(topic)
      const commands = await pubsubCommands().catch((err) => {
        throw unavailable(err)
      })
      channels.set(k.channel, topic)
      await subscriber[commands.subscribe](k.channel)
    },
    async unsubscribe(topic) {
      const k = keys(topic)
      channels.delete(k.channel)
      delivered.delete(topic)
      if (closed) return
      const commands = await pubsubCommands()
      await subscriber[commands.unsubscribe](k.channel)
    },
    async history(topic, since?: StreamPosition): Promise<HistoryResult> {
      let reply: HistoryReply
      try {
        reply = await readStream(topic, since ? since.offset : -1)
      } catch (err) {
        throw unavailable(err)
      }
      const [epoch, offsetValue, entries] = reply
      const offset = Number(offsetValue)
      const position = { epoch, offset }
      if (!since) return { recovered: true, messages: [], position }
      if (since.epoch !== epoch || since.offset > offset) return { recovered: false, messages: [], position }
      if (since.offset === offset) return { recovered: true, messages: [], position }
      // The window is `size` messages exactly (Redis trims approximately, in whole nodes).
      if (offset - since.offset > historySize) return { recovered: false, messages: [], position }
      const messages = entriesToMessages(topic, epoch, entries)
      // Everything after `since` must still be there (the first entry read is the next one), and young enough.
      const storedAt = entries[0] ? Number(fieldsOf(entries[0][1]).t) : 0
      if (messages[0]?.offset !== since.offset + 1) return { recovered: false, messages: [], position }
      if (Date.now() - storedAt > historyTtlMs) return { recovered: false, messages: [], position }
      return { recovered: true, messages, position }
    },
    async presenceAdd(topic, member) {
      const k = keys(topic)
      const stored: StoredMember = { c: member.connectionId, u: member.userId, i: member.info, n: nodeId }
      try {
        const commands = await pubsubCommands()
        await runPresenceAdd(
          [k.presence],
          [member.connectionId, JSON.stringify(stored), k.channel, commands.publish],
        )
      } catch (err) {
        throw unavailable(err)
      }
    },
    async presenceRemove(topic, connectionId) {
      const k = keys(topic)
      try {
        const commands = await pubsubCommands()
        await runPresenceRemove([k.presence], [connectionId, k.channel, commands.publish])
      } catch (err) {
        throw unavailable(err)
      }
    },
    async presenceList(topic) {
      try {
        await waitReady()
        return await liveMembers(topic)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(heartbeat)
      channels.clear()
      if (redis.status === 'ready') await redis.del(nodeKey(nodeId)).catch(() => {})
      subscriber.disconnect()
      if (ownsClient) redis.disconnect()
    },
  }
  return engine
}
