import { FlumenError } from '@flumen/core'
import type { ClusterOptions, RedisOptions } from 'ioredis'
import { Cluster, Redis } from 'ioredis'
import type { ClusterNode, RedisEngineOptions, ResolvedOptions } from './options.js'

/** A Redis or a Redis Cluster: the engine speaks to both through the same commands. */
export type RedisClient = Redis | Cluster

export type Topology = 'single' | 'sentinel' | 'cluster'

/**
 * The engine's connections: one for commands (scripts, reads) and one for subscriptions, for
 * whatever topology the options name. A `url` is probed first: if it is a Cluster node, both
 * connections are Clusters started from it.
 */
export interface Connections {
  /** The command connection, once known (a `url` is probed first); undefined when closed before. */
  commands(): Promise<RedisClient | undefined>
  /** The subscriber connection, created beside the command one; undefined when closed before. */
  subscriber(): Promise<RedisClient | undefined>
  readonly topology: () => Topology | undefined
  /** Whether the command connection is ready now. */
  isReady(): boolean
  /** Resolves once commands can be sent; rejects with UNAVAILABLE after `unavailableAfterMs`. */
  ready(): Promise<RedisClient>
  /** Runs `listener` each time the subscriber (or a cluster's command side) is back after a drop. */
  onReconnect(listener: () => void): void
  close(): Promise<void>
}

const parseNode = (node: ClusterNode | string): ClusterNode => {
  if (typeof node !== 'string') return node
  const url = new URL(node.includes('://') ? node : `redis://${node}`)
  return { host: url.hostname, port: Number(url.port || 6379) }
}

/**
 * Commands fail at once while Redis is away (no offline queue): a publish is rejected, never held
 * and lost. The command timeout rejects what a stalled server does not answer.
 */
const commandOptions = (resolved: ResolvedOptions, extra: RedisOptions | undefined): RedisOptions => ({
  ...extra,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: resolved.commandTimeoutMs,
  retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
})

/** The subscriber keeps its subscriptions across reconnects and waits for Redis as long as needed. */
const subscriberOptions = (extra: RedisOptions | undefined): RedisOptions => ({
  ...extra,
  enableOfflineQueue: true,
  // Its INFO ready check would fail on a connection already in subscriber mode (a subscribe queued
  // before it connected): a subscriber needs no loading check.
  enableReadyCheck: false,
  maxRetriesPerRequest: null,
  retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
})

const clusterPair = (
  nodes: readonly ClusterNode[],
  resolved: ResolvedOptions,
  extra: RedisOptions | undefined,
  base: ClusterOptions = {},
): { commands: Cluster; subscriber: Cluster } => ({
  commands: new Cluster([...nodes], {
    ...base,
    enableOfflineQueue: false,
    redisOptions: { ...base.redisOptions, ...extra, commandTimeout: resolved.commandTimeoutMs },
    // A failover moves slots: commands follow MOVED/ASK (never reported to the app) and wait out
    // a short CLUSTERDOWN, within the command timeout.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    // Master gone, replica not promoted yet: reconnect, so the slots map refreshes after the vote.
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
  }),
  subscriber: new Cluster([...nodes], {
    ...base,
    shardedSubscribers: true,
    enableOfflineQueue: true,
    redisOptions: { ...base.redisOptions, ...extra },
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
  }),
})

/** Opens the connections the options describe. */
export const openConnections = (options: RedisEngineOptions, resolved: ResolvedOptions): Connections => {
  const extra = options.redisOptions
  const given = options.client
  let topology: Topology | undefined
  let commands: RedisClient | undefined
  let subscriber: RedisClient | undefined
  let closed = false
  const reconnectListeners: (() => void)[] = []
  const owned: RedisClient[] = []

  const wire = (client: RedisClient, role: 'commands' | 'subscriber'): void => {
    client.on('error', (err: unknown) => resolved.logError(err))
    let readyOnce = false
    client.on('ready', () => {
      if (!readyOnce) {
        readyOnce = true
        return
      }
      if (role === 'subscriber' || client.isCluster) for (const listener of reconnectListeners) listener()
    })
    if (client.isCluster) {
      // A Cluster's shards come and go (a failover): each node that joins is a reconnect.
      client.on('+node', () => {
        if (readyOnce) for (const listener of reconnectListeners) listener()
      })
    }
  }

  const use = (pair: { commands: RedisClient; subscriber: RedisClient }, ownsCommands: boolean): void => {
    commands = pair.commands
    subscriber = pair.subscriber
    if (ownsCommands) owned.push(pair.commands)
    owned.push(pair.subscriber)
    if (ownsCommands) wire(pair.commands, 'commands')
    wire(pair.subscriber, 'subscriber')
  }

  let known: Promise<void>
  /** Set while a `url` is being probed: close() must not wait for a Redis that never came. */
  let stopProbing: (() => void) | undefined
  if (given) {
    topology = given.isCluster ? 'cluster' : 'single'
    if (given instanceof Cluster || given.isCluster) {
      const cluster = given as Cluster
      // Private in ioredis's types, but what a Cluster was started from: the subscriber starts there too.
      const startup = Reflect.get(cluster, 'startupNodes') as (ClusterNode | string)[]
      const nodes = startup.map(parseNode)
      use(
        { commands: cluster, subscriber: clusterPair(nodes, resolved, extra, cluster.options).subscriber },
        false,
      )
    } else {
      use({ commands: given, subscriber: (given as Redis).duplicate(subscriberOptions(extra)) }, false)
    }
    known = Promise.resolve()
  } else if (options.cluster) {
    topology = 'cluster'
    use(clusterPair(options.cluster.map(parseNode), resolved, extra), true)
    known = Promise.resolve()
  } else if (options.sentinel) {
    topology = 'sentinel'
    const sentinel = {
      sentinels: [...options.sentinel.sentinels],
      name: options.sentinel.name,
      ...(options.sentinel.sentinelPassword !== undefined && {
        sentinelPassword: options.sentinel.sentinelPassword,
      }),
    }
    const client = new Redis({ ...commandOptions(resolved, extra), ...sentinel })
    use({ commands: client, subscriber: new Redis({ ...subscriberOptions(extra), ...sentinel }) }, true)
    known = Promise.resolve()
  } else {
    // One Redis, or a node of a Cluster: ask it before choosing.
    const url = options.url ?? 'redis://127.0.0.1:6379'
    const probe = new Redis(url, commandOptions(resolved, extra))
    probe.on('error', () => {}) // reported through the connections chosen below
    known = new Promise<void>((resolve) => {
      stopProbing = () => {
        probe.disconnect()
        resolve()
      }
      const decide = async (): Promise<void> => {
        let clusterEnabled = false
        try {
          clusterEnabled = /cluster_enabled:1/.test(await probe.info('cluster'))
        } catch {
          // A Redis without INFO cluster (old, or a proxy): a single instance.
        }
        stopProbing = undefined
        if (closed) {
          probe.disconnect()
          return resolve()
        }
        if (clusterEnabled) {
          topology = 'cluster'
          probe.disconnect()
          use(clusterPair([parseNode(url)], resolved, extra), true)
        } else {
          topology = 'single'
          use({ commands: probe, subscriber: probe.duplicate(subscriberOptions(extra)) }, true)
        }
        resolve()
      }
      probe.once('ready', () => void decide())
    })
  }

  const isReady = (): boolean => commands?.status === 'ready'

  // One shared wait for readiness: callers race it with their own deadline (no listener each).
  let readiness: Promise<void> | undefined
  const becomeReady = (): Promise<void> => {
    readiness ??= (async () => {
      await known
      const client = commands!
      if (client.status !== 'ready')
        await new Promise<void>((resolve) => client.once('ready', () => resolve()))
    })().finally(() => {
      readiness = undefined
    })
    return readiness
  }

  return {
    commands: async () => {
      await known
      return commands
    },
    subscriber: async () => {
      await known
      return subscriber
    },
    topology: () => topology,
    isReady,
    async ready() {
      if (closed) throw new FlumenError('UNAVAILABLE', 'The engine is closed')
      if (isReady()) return commands!
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          becomeReady(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new FlumenError('UNAVAILABLE', 'Redis is unavailable')),
              resolved.unavailableAfterMs,
            )
          }),
        ])
      } finally {
        clearTimeout(timer)
      }
      return commands!
    },
    onReconnect(listener) {
      reconnectListeners.push(listener)
    },
    async close() {
      closed = true
      stopProbing?.()
      await known.catch(() => {})
      for (const client of owned) client.disconnect()
    },
  }
}
