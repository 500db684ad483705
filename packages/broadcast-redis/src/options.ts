import type { HistoryOptions } from '@flumen/broadcast'
import { dedupeDefaults, resolveHistory } from '@flumen/broadcast'
import { positiveInteger } from '@flumen/core'
import type { Cluster, Redis, RedisOptions } from 'ioredis'

/** A Redis Cluster node to start from. */
export interface ClusterNode {
  host: string
  port: number
}

export interface RedisEngineOptions {
  /**
   * One Redis, e.g. `redis://127.0.0.1:6379/0` — or any node of a Redis Cluster: the engine finds
   * out (`INFO cluster`) and talks to the whole cluster. Ignored with `client`, `cluster` or
   * `sentinel`.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string
  /** A Redis Cluster, by the nodes to start from (any of them is enough; list several). */
  cluster?: readonly (ClusterNode | string)[]
  /**
   * Redis behind Sentinel: ioredis asks the Sentinels for the current master and follows failovers.
   */
  sentinel?: { sentinels: readonly ClusterNode[]; name: string; sentinelPassword?: string }
  /** Connection options for every connection the engine opens (password, TLS, database…). */
  redisOptions?: RedisOptions
  /**
   * An ioredis `Redis` or `Cluster` to use for commands; the engine opens its own subscriber
   * beside it (for a Cluster, from its startup nodes and options) and never closes a client it was
   * given.
   */
  client?: Redis | Cluster
  /**
   * Prefix of every key and channel (no braces: every key of a topic shares the hash tag `{topic}`,
   * so a topic's keys live in one Cluster slot).
   * @default 'flumen:'
   */
  prefix?: string
  /**
   * Per-topic history, by count, bytes and age: `size` 1000, `maxBytes` 4 MiB, `ttlMs` 10 minutes.
   * Redis holds at most `topics × min(size × message size, maxBytes)` bytes of history.
   */
  history?: HistoryOptions
  /**
   * Keys of a topic with no publish for this long expire (its epoch with them).
   * @default 86_400_000 (24 h)
   */
  keyTtlMs?: number
  /**
   * A node that stops refreshing its heartbeat for this long is dead: its presence members are
   * removed (with leave events) by the other nodes within about 1.3× this time. While alive, each
   * heartbeat also puts back the node's members a Redis restart lost.
   * @default 10_000
   */
  nodeTtlMs?: number
  /**
   * Sharded pub/sub (SPUBLISH/SSUBSCRIBE, each topic on its slot's node): `auto` uses it on Redis 7
   * and later.
   * @default 'auto'
   */
  sharded?: boolean | 'auto'
  /**
   * While Redis is unreachable, how long a publish or history read waits for it before it is
   * rejected with UNAVAILABLE.
   * @default 1_000
   */
  unavailableAfterMs?: number
  /**
   * A command Redis does not answer within this long (a stalled or overloaded server) is rejected
   * with UNAVAILABLE.
   * @default 1_000
   */
  commandTimeoutMs?: number
  /**
   * How often this node compares, per topic it serves, what it delivered with the head of the
   * topic's stream: a message pub/sub lost (a failover) is read from the stream and delivered, in
   * order and once; history Redis lost (a restart from an old snapshot) gets a new epoch.
   * @default 5_000
   */
  positionCheckMs?: number
  /**
   * How long a publish's idempotency key is remembered (one Redis key each, expiring then): the same
   * key again within it is the same publish (a client's retry), answered with the first one's offset.
   * @default 120_000
   */
  dedupeWindowMs?: number
  /** Connection trouble and failed background work. @default console.error */
  logError?: (err: unknown) => void
}

export interface ResolvedOptions {
  readonly prefix: string
  readonly history: Required<HistoryOptions>
  readonly keyTtlMs: number
  readonly nodeTtlMs: number
  readonly unavailableAfterMs: number
  readonly commandTimeoutMs: number
  readonly positionCheckMs: number
  readonly dedupeWindowMs: number
  readonly logError: (err: unknown) => void
}

export const redisEngineDefaults: {
  readonly prefix: 'flumen:'
  readonly keyTtlMs: 86_400_000
  readonly nodeTtlMs: 10_000
  readonly unavailableAfterMs: 1_000
  readonly commandTimeoutMs: 1_000
  readonly positionCheckMs: 5_000
} = {
  prefix: 'flumen:',
  keyTtlMs: 86_400_000,
  nodeTtlMs: 10_000,
  unavailableAfterMs: 1_000,
  commandTimeoutMs: 1_000,
  positionCheckMs: 5_000,
}

/** Checks options up front and fills in the defaults. */
export const resolveOptions = (options: RedisEngineOptions): ResolvedOptions => {
  const prefix = options.prefix ?? redisEngineDefaults.prefix
  if (typeof prefix !== 'string' || /[{}\s]/.test(prefix))
    throw new Error('redisEngine: prefix must not contain braces or spaces')
  const history = resolveHistory(options.history, 'redisEngine')
  const keyTtlMs = positiveInteger(
    'redisEngine',
    'keyTtlMs',
    options.keyTtlMs ?? redisEngineDefaults.keyTtlMs,
  )
  if (keyTtlMs < history.ttlMs) throw new Error('redisEngine: keyTtlMs must be at least history.ttlMs')
  const topologies = [options.client, options.cluster, options.sentinel].filter(
    (given) => given !== undefined,
  )
  if (topologies.length > 1) throw new Error('redisEngine: give one of client, cluster and sentinel')
  if (options.cluster !== undefined && (!Array.isArray(options.cluster) || options.cluster.length === 0))
    throw new Error('redisEngine: cluster must list at least one node')
  if (
    options.sentinel !== undefined &&
    (!Array.isArray(options.sentinel.sentinels) ||
      options.sentinel.sentinels.length === 0 ||
      !options.sentinel.name)
  )
    throw new Error('redisEngine: sentinel needs sentinels and the master name')
  return {
    prefix,
    history,
    keyTtlMs,
    nodeTtlMs: positiveInteger(
      'redisEngine',
      'nodeTtlMs',
      options.nodeTtlMs ?? redisEngineDefaults.nodeTtlMs,
    ),
    unavailableAfterMs: positiveInteger(
      'redisEngine',
      'unavailableAfterMs',
      options.unavailableAfterMs ?? redisEngineDefaults.unavailableAfterMs,
    ),
    commandTimeoutMs: positiveInteger(
      'redisEngine',
      'commandTimeoutMs',
      options.commandTimeoutMs ?? redisEngineDefaults.commandTimeoutMs,
    ),
    dedupeWindowMs: positiveInteger(
      'redisEngine',
      'dedupeWindowMs',
      options.dedupeWindowMs ?? dedupeDefaults.windowMs,
    ),
    positionCheckMs: positiveInteger(
      'redisEngine',
      'positionCheckMs',
      options.positionCheckMs ?? redisEngineDefaults.positionCheckMs,
    ),
    logError: options.logError ?? ((err: unknown) => console.error('[flumen/broadcast-redis]', err)),
  }
}
