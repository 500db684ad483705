// The engine on a real Redis Cluster (3 masters, 3 replicas) started by the test: every slot, a
// Cluster client given by the app, a node found by URL alone, and a master killed mid-stream.

import type { EngineMessage } from '@flumen/broadcast'
import type { RedisCluster } from '@flumen/testing'
import {
  describeEngineConformance,
  requireRedis,
  startRedisCluster,
  uniquePrefix,
  waitFor,
} from '@flumen/testing'
import { Cluster } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RedisEngine, RedisEngineOptions } from './index.js'
import { redisEngine } from './index.js'

const available = await requireRedis()

describe.skipIf(!available)('redisEngine on a Redis Cluster', () => {
  let cluster: RedisCluster
  const prefix = uniquePrefix()
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 })
  }, 60_000)
  afterAll(async () => {
    await cluster?.destroy()
  })

  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const engine = (options: RedisEngineOptions = {}): RedisEngine => {
    const created = redisEngine({ cluster: cluster.startupNodes, prefix, logError: () => {}, ...options })
    cleanups.push(() => created.close())
    return created
  }
  const collect = (target: RedisEngine): EngineMessage[] => {
    const messages: EngineMessage[] = []
    target.attach({ onMessage: (message) => messages.push(message), onPresence: () => {} })
    return messages
  }

  describeEngineConformance({
    name: 'redis cluster',
    create: ({ historySize }) =>
      redisEngine({
        cluster: cluster.startupNodes,
        prefix,
        history: { size: historySize },
        logError: () => {},
      }),
    createPeerNode: ({ historySize }) =>
      redisEngine({
        cluster: cluster.startupNodes,
        prefix,
        history: { size: historySize },
        logError: () => {},
      }),
  })

  it('publishes to topics in every slot from a URL of one node: it finds the cluster itself', async () => {
    const node = cluster.nodes[0]!
    const publisher = redisEngine({ url: node.url, prefix, logError: () => {} })
    cleanups.push(() => publisher.close())
    const subscriber = engine()
    const received = collect(subscriber)
    const topics = Array.from({ length: 300 }, (_, i) => `spread:${i}`)
    await Promise.all(topics.map((topic) => subscriber.subscribe(topic)))
    const acks = await Promise.all(topics.map((topic) => publisher.publish(topic, JSON.stringify(topic))))
    expect(publisher.topology).toBe('cluster')
    expect(acks.every((ack) => ack.offset === 1)).toBe(true)
    await waitFor(() => received.length === topics.length, 10_000)
    expect(new Set(received.map((message) => message.topic)).size).toBe(topics.length)
  })

  it('works with an ioredis Cluster the app gives: scripts, history and presence across slots', async () => {
    const client = new Cluster([...cluster.startupNodes])
    cleanups.push(() => client.disconnect())
    const given = redisEngine({ client, prefix, logError: () => {}, nodeTtlMs: 600 })
    cleanups.push(() => given.close())
    const other = engine({ nodeTtlMs: 600 })
    const topics = Array.from({ length: 50 }, (_, i) => `given:${i}`)
    for (const topic of topics) {
      const first = await given.publish(topic, '1')
      await given.publish(topic, '2')
      const history = await other.history(topic, { epoch: first.epoch, offset: 0 })
      expect(history.messages.map((m) => m.data)).toEqual(['1', '2'])
      await given.presenceAdd(topic, { connectionId: `c-${topic}`, userId: 'u', info: null })
    }
    const lists = await Promise.all(topics.map((topic) => other.presenceList(topic)))
    expect(lists.every((members) => members.length === 1)).toBe(true)
    // The giving node goes away without a word: the others sweep its members once it is silent.
    await given.close()
    await waitFor(async () => (await other.presenceList(topics[0]!)).length === 0, 5_000)
  })

  it('survives its master being killed: publishes resume, every acknowledged one is delivered once, in order', async () => {
    const publisher = engine({ positionCheckMs: 200 })
    const subscriber = engine({ positionCheckMs: 200 })
    const received = collect(subscriber)
    const topic = 'failover:feed'
    await subscriber.subscribe(topic)
    const acked: EngineMessage[] = []
    const ackedAt: number[] = []
    let failures = 0
    let running = true
    const publishing = (async () => {
      for (let i = 0; running; i++) {
        try {
          acked.push(await publisher.publish(topic, String(i)))
          ackedAt.push(Date.now())
        } catch {
          failures++
        }
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    await waitFor(() => acked.length >= 100)
    const master = await cluster.masterOf(`${prefix}{${topic}}:m`)
    const killedAt = Date.now()
    const ackedBefore = acked.length
    await master.stop()
    await waitFor(() => acked.length > ackedBefore + 100, 30_000)
    running = false
    await publishing
    // Time to resume: from the kill to the first publish stored after it (a publish that was on its
    // way when the master died may still be answered by it).
    const resumedAfter = (ackedAt.find((at) => at > killedAt + 50) ?? Number.NaN) - killedAt
    console.log(
      `cluster failover: ${failures} publishes refused (UNAVAILABLE), publishing resumed ${resumedAfter} ms after the kill`,
    )
    // Every acknowledged publish reaches the subscriber node once, in order — unless the replica
    // took over without the master's last writes, which surfaces as a new epoch, never as silence.
    await waitFor(() => received.at(-1)?.data === acked.at(-1)!.data, 10_000)
    const epochs = new Set(received.map((message) => message.epoch))
    const keys = received.map((message) => `${message.epoch}:${message.offset}`)
    expect(new Set(keys).size).toBe(keys.length)
    if (epochs.size === 1) {
      const delivered = new Set(received.map((message) => message.data))
      expect(acked.filter((ack) => !delivered.has(ack.data))).toEqual([])
      expect(received.map((message) => message.offset)).toEqual(
        [...received.map((message) => message.offset)].sort((a, b) => a - b),
      )
    }
    await master.start() // back as a replica, for what follows
  }, 90_000)
})
