import type { PresenceMember } from '@flumen/broadcast'
import type { StoredMember } from './codec.js'
import { nodesKey, storeMember, toMember, topicKeys } from './codec.js'
import type { RedisClient } from './connection.js'
import type { Scripts } from './scripts.js'

export interface PresenceContext {
  readonly prefix: string
  readonly nodeId: string
  readonly nodeTtlMs: number
  /** The command connection and its scripts, once ready (rejects UNAVAILABLE otherwise). */
  ready(): Promise<{ client: RedisClient; scripts: Scripts }>
  /** The publish command of the channels (SPUBLISH when sharded). */
  publishCommand(): Promise<string>
  logError(err: unknown): void
}

/**
 * Presence in Redis: one hash per topic (connection id → member, with the node holding it), and the
 * live nodes in one sorted set (score: when each heartbeat expires). Reads never span slots: a
 * topic's hash, then the nodes set. Each heartbeat refreshes this node, puts back the members of
 * its own connections that Redis lost (a restart: they are announced again), and removes members
 * of nodes that stopped beating.
 */
export class RedisPresence {
  /** Members of this node's own connections, by topic: what a heartbeat re-asserts. */
  private readonly local = new Map<string, Map<string, StoredMember>>()
  /**
   * Members being added now (`topic\n connection id`): a heartbeat must not restore one before its
   * own add has run, or the join is announced twice.
   */
  private readonly adding = new Set<string>()
  /** This node's first heartbeat: its members must not look like a dead node's before it. */
  private registered: Promise<void> | undefined

  constructor(private readonly context: PresenceContext) {}

  async add(topic: string, member: PresenceMember): Promise<void> {
    const stored = storeMember(member, this.context.nodeId)
    let members = this.local.get(topic)
    if (!members) {
      members = new Map()
      this.local.set(topic, members)
    }
    members.set(member.connectionId, stored)
    const adding = `${topic}\n${member.connectionId}`
    this.adding.add(adding)
    try {
      const { client, scripts } = await this.context.ready()
      await this.register(client)
      const k = topicKeys(this.context.prefix, topic)
      await scripts.presenceAdd(
        k.presence,
        member.connectionId,
        JSON.stringify(stored),
        k.channel,
        await this.context.publishCommand(),
      )
    } finally {
      // Failed or not, the member is this node's: from now on heartbeats re-assert it.
      this.adding.delete(adding)
    }
  }

  async remove(topic: string, connectionId: string): Promise<void> {
    const members = this.local.get(topic)
    if (members?.delete(connectionId) && members.size === 0) this.local.delete(topic)
    const { scripts } = await this.context.ready()
    const k = topicKeys(this.context.prefix, topic)
    await scripts.presenceRemove(k.presence, connectionId, k.channel, await this.context.publishCommand())
  }

  /** Members whose node is alive; members of dead nodes are removed (with leave events). */
  async list(topic: string): Promise<PresenceMember[]> {
    const { client, scripts } = await this.context.ready()
    const k = topicKeys(this.context.prefix, topic)
    const stored = Object.values(await client.hgetall(k.presence)).map(
      (value) => JSON.parse(value) as StoredMember,
    )
    const nodes = [...new Set(stored.map((member) => member.n))].filter(
      (node) => node !== this.context.nodeId,
    )
    const alive = new Set<string>([this.context.nodeId])
    if (nodes.length > 0) {
      const expiries = await client.zmscore(nodesKey(this.context.prefix), ...nodes)
      const now = Date.now()
      nodes.forEach((node, i) => {
        const expiresAt = expiries[i]
        if (expiresAt !== null && expiresAt !== undefined && Number(expiresAt) > now) alive.add(node)
      })
    }
    const members: PresenceMember[] = []
    const publish = await this.context.publishCommand()
    for (const member of stored) {
      if (alive.has(member.n)) members.push(toMember(member))
      else await scripts.presenceRemove(k.presence, member.c, k.channel, publish)
    }
    return members
  }

  private register(client: RedisClient): Promise<void> {
    this.registered ??= this.refresh(client).catch((err: unknown) => {
      this.registered = undefined
      throw err
    })
    return this.registered
  }

  private async refresh(client: RedisClient): Promise<void> {
    await client.zadd(nodesKey(this.context.prefix), Date.now() + this.context.nodeTtlMs, this.context.nodeId)
  }

  /** One heartbeat: this node is alive, its members are in Redis, dead nodes' members are gone. */
  async beat(topics: Iterable<string>): Promise<void> {
    const { client, scripts } = await this.context.ready()
    const now = Date.now()
    const key = nodesKey(this.context.prefix)
    await this.refresh(client)
    // Nodes silent for ten lifetimes are long dead: their entries go.
    await client.zremrangebyscore(key, '-inf', now - 10 * this.context.nodeTtlMs)
    const publish = await this.context.publishCommand()
    await Promise.all(
      [...this.local].map(async ([topic, members]) => {
        const k = topicKeys(this.context.prefix, topic)
        const pairs = [...members]
          .filter(([id]) => !this.adding.has(`${topic}\n${id}`))
          .flatMap(([id, stored]) => [id, JSON.stringify(stored)])
        if (pairs.length > 0) await scripts.presenceRestore(k.presence, k.channel, publish, ...pairs)
      }),
    )
    await Promise.all([...topics].map((topic) => this.list(topic).catch(this.context.logError)))
  }

  /** Takes this node out at once (a clean close): others need not wait for its heartbeat to expire. */
  async leave(): Promise<void> {
    const { client } = await this.context.ready()
    await client.zrem(nodesKey(this.context.prefix), this.context.nodeId)
  }
}
