import type { Engine, EngineListener, HistoryResult, StreamPosition } from '@flumen/broadcast'
import { recoveryOf } from '@flumen/broadcast'
import { createId, FlumenError } from '@flumen/core'
import type { StreamEntry } from './codec.js'
import {
  entriesToMessages,
  originField,
  parseVolatile,
  publishKeyOf,
  snapshotKeyOf,
  storedAt,
  toMember,
  topicKeys,
  volatilePayload,
} from './codec.js'
import type { RedisClient, Topology } from './connection.js'
import { openConnections } from './connection.js'
import { Delivery } from './delivery.js'
import type { RedisEngineOptions } from './options.js'
import { resolveOptions } from './options.js'
import { RedisPresence } from './presence.js'
import type { Scripts } from './scripts.js'
import { defineScripts } from './scripts.js'

export interface RedisEngine extends Engine {
  /** This node's id (its presence members carry it). */
  readonly nodeId: string
  /** What the engine talks to, once known (`url` is probed first). */
  readonly topology: Topology | undefined
}

/**
 * The hub engine for many processes: messages go between nodes over Redis pub/sub (sharded on
 * Redis 7+, each topic on its slot's node in a Cluster), history and offsets live in Redis Streams
 * so a client recovers on whichever node it reconnects to, and presence lives in Redis with per-node
 * heartbeats. One Redis, Sentinel or a Redis Cluster.
 */
export const redisEngine = (options: RedisEngineOptions = {}): RedisEngine => {
  const resolved = resolveOptions(options)
  const { prefix, history, keyTtlMs, dedupeWindowMs, logError } = resolved
  const nodeId = createId()
  const connections = openConnections(options, resolved)
  let listener: EngineListener | undefined
  let closed = false

  let scripts: { client: RedisClient; scripts: Scripts } | undefined
  /** The command connection with its scripts, once it is ready (UNAVAILABLE otherwise). */
  const ready = async (): Promise<{ client: RedisClient; scripts: Scripts }> => {
    if (closed) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
    const client = await connections.ready()
    if (scripts?.client !== client) scripts = { client, scripts: defineScripts(client) }
    return scripts
  }

  // Sharded pub/sub on Redis 7+, found out once.
  let pubsub: Promise<{ publish: string; sharded: boolean }> | undefined
  const pubsubCommands = (): Promise<{ publish: string; sharded: boolean }> => {
    pubsub ??= (async () => {
      let sharded = options.sharded ?? 'auto'
      if (sharded === 'auto') {
        const { client } = await ready()
        sharded = Number(/redis_version:(\d+)/.exec(await client.info('server'))?.[1]) >= 7
      }
      return { publish: sharded ? 'SPUBLISH' : 'PUBLISH', sharded }
    })()
    pubsub.catch(() => {
      pubsub = undefined
    })
    return pubsub
  }

  const unavailable = (err: unknown): FlumenError =>
    err instanceof FlumenError ? err : new FlumenError('UNAVAILABLE', 'Redis is unavailable', { cause: err })

  const delivery = new Delivery({
    prefix,
    readEpochTtlMs: history.ttlMs,
    ready,
    listener: () => listener,
    logError,
  })
  const presence = new RedisPresence({
    prefix,
    nodeId,
    nodeTtlMs: resolved.nodeTtlMs,
    ready,
    publishCommand: async () => (await pubsubCommands()).publish,
    logError,
  })

  /** Topics this node subscribed to, by channel. */
  const channels = new Map<string, string>()
  const onChannelMessage = (channel: string, payload: string): void => {
    const topic = channels.get(channel)
    if (topic === undefined || closed) return
    try {
      if (payload.startsWith('m|')) delivery.onPayload(topic, payload)
      // Volatile: no offset, so not through the gap checks of stored messages.
      else if (payload.startsWith('v|')) {
        const message = parseVolatile(topic, payload)
        if (message) listener?.onVolatile?.(message)
      } else if (payload.startsWith('j|') || payload.startsWith('l|')) {
        const member = toMember(JSON.parse(payload.slice(2)))
        listener?.onPresence(payload[0] === 'j' ? { topic, join: [member] } : { topic, leave: [member] })
      }
    } catch (err) {
      logError(err)
    }
  }
  void connections.subscriber().then((subscriber) => {
    // Undefined when the engine closed before a Redis ever answered.
    subscriber?.on('smessage', onChannelMessage)
    subscriber?.on('message', onChannelMessage)
  })
  // Back after a drop: what pub/sub lost meanwhile is read from the streams.
  connections.onReconnect(() => void delivery.checkAll())

  const beat = (): void => {
    if (closed || !connections.isReady()) return
    void presence.beat(channels.values()).catch(logError)
  }
  const heartbeat = setInterval(beat, Math.max(100, Math.floor(resolved.nodeTtlMs / 3)))
  heartbeat.unref()
  const positionCheck = setInterval(() => {
    if (!closed && connections.isReady()) void delivery.checkAll()
  }, resolved.positionCheckMs)
  positionCheck.unref()
  void ready()
    .then(beat)
    .catch(() => {})

  type HistoryReply = [epoch: string, offset: number, entries: StreamEntry[]]

  return {
    name: 'redis',
    nodeId,
    get topology() {
      return connections.topology()
    },
    get available() {
      return !closed && connections.isReady()
    },
    attach(next) {
      listener = next
    },
    async publish(topic, data, publishOptions = {}) {
      const k = topicKeys(prefix, topic)
      const origin = originField(publishOptions.origin)
      const known = delivery.known(topic)
      try {
        const { scripts: run } = await ready()
        const commands = await pubsubCommands()
        const key = publishOptions.key
        const [epoch, offset] = await run.publish(
          k.meta,
          k.stream,
          k.sizes,
          // Without a key the script reads no fourth key: the meta key stands in (same slot).
          key === undefined ? k.meta : publishKeyOf(prefix, topic, key),
          createId(),
          data,
          origin,
          history.size,
          history.maxBytes,
          keyTtlMs,
          Date.now(),
          k.channel,
          commands.publish,
          known?.epoch ?? '',
          known?.offset ?? 0,
          key === undefined ? 0 : dedupeWindowMs,
        )
        const position = { epoch, offset: Number(offset) }
        return origin ? { topic, data, ...position, origin } : { topic, data, ...position }
      } catch (err) {
        throw unavailable(err)
      }
    },
    async publishVolatile(topic, data, publishOptions = {}) {
      const origin = originField(publishOptions.origin)
      const k = topicKeys(prefix, topic)
      try {
        const { scripts: run } = await ready()
        const commands = await pubsubCommands()
        await run.volatile(k.meta, k.channel, commands.publish, volatilePayload(origin, data))
      } catch (err) {
        throw unavailable(err)
      }
    },
    async subscribe(topic) {
      if (closed) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
      const k = topicKeys(prefix, topic)
      try {
        const commands = await pubsubCommands()
        const subscriber = await connections.subscriber()
        if (!subscriber) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
        channels.set(k.channel, topic)
        delivery.subscribed(topic)
        await (commands.sharded ? subscriber.ssubscribe(k.channel) : subscriber.subscribe(k.channel))
      } catch (err) {
        throw unavailable(err)
      }
    },
    async unsubscribe(topic) {
      const k = topicKeys(prefix, topic)
      channels.delete(k.channel)
      delivery.unsubscribed(topic)
      if (closed) return
      const commands = await pubsubCommands()
      const subscriber = await connections.subscriber()
      await (commands.sharded ? subscriber?.sunsubscribe(k.channel) : subscriber?.unsubscribe(k.channel))
    },
    async loadSnapshot(key) {
      try {
        const { client } = await ready()
        return (await client.get(snapshotKeyOf(prefix, key))) ?? undefined
      } catch (err) {
        throw unavailable(err)
      }
    },
    async saveSnapshot(key, value) {
      try {
        const { client } = await ready()
        await client.set(snapshotKeyOf(prefix, key), value)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async historyLength(topic) {
      try {
        const { client } = await ready()
        // The stream is trimmed approximately (XADD MAXLEN ~): it may hold a few more than are kept.
        return Math.min(await client.xlen(topicKeys(prefix, topic).stream), history.size)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async history(topic, since?: StreamPosition): Promise<HistoryResult> {
      const k = topicKeys(prefix, topic)
      let reply: HistoryReply
      try {
        const { scripts: run } = await ready()
        reply = await run.history(
          k.meta,
          k.stream,
          k.sizes,
          createId(),
          since ? since.offset : -1,
          history.ttlMs,
        )
      } catch (err) {
        throw unavailable(err)
      }
      const [epoch, offset, entries] = reply
      return recoveryOf(since, { epoch, offset: Number(offset) }, () =>
        // The oldest entry read must be young enough: the window is by age too.
        entries[0] && Date.now() - storedAt(entries[0]) > history.ttlMs
          ? []
          : entriesToMessages(topic, epoch, entries),
      )
    },
    async presenceAdd(topic, member) {
      try {
        await presence.add(topic, member)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async presenceRemove(topic, connectionId) {
      try {
        await presence.remove(topic, connectionId)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async presenceList(topic) {
      try {
        return await presence.list(topic)
      } catch (err) {
        throw unavailable(err)
      }
    },
    async close() {
      if (closed) return
      if (connections.isReady()) await presence.leave().catch(() => {})
      closed = true
      clearInterval(heartbeat)
      clearInterval(positionCheck)
      channels.clear()
      await connections.close()
    },
  }
}
