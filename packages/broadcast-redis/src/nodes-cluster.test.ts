// Two hub nodes (processes of their own) on a Redis Cluster, with the real @flumen/client: clients
// are moved between the nodes and a master is killed while thousands of messages are published.
// Per client and topic: nothing acknowledged is lost (or a reset says so), nothing is repeated,
// nothing arrives out of order.

import { fileURLToPath } from 'node:url'
import type { Client } from '@flumen/client/node'
import { createClient } from '@flumen/client/node'
import type { ForkedServer, RedisCluster } from '@flumen/testing'
import { forkServer, requireRedis, startRedisCluster, uniquePrefix, waitFor } from '@flumen/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const available = await requireRedis()
const fixture = fileURLToPath(new URL('./node.fixture.ts', import.meta.url))

interface Reader {
  client: Client
  /** What arrived, per topic, in arrival order (the published counter). */
  received: Map<string, number[]>
  /** Index in `received` where each reset happened, per topic. */
  resets: Map<string, number[]>
  positions: Map<string, { epoch: string; offset: number } | undefined>
}

describe.skipIf(!available)('two nodes on a Redis Cluster, with the real client', () => {
  let cluster: RedisCluster
  const nodes: ForkedServer[] = []
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1 })
    const env = {
      CLUSTER: JSON.stringify(cluster.startupNodes),
      PREFIX: uniquePrefix(),
      POSITION_CHECK_MS: '300',
    }
    nodes.push(...(await Promise.all([forkServer(fixture, env), forkServer(fixture, env)])))
  }, 90_000)
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.kill()))
    await cluster?.destroy()
  })

  const urlOf = (node: ForkedServer, user: string): string => `ws://127.0.0.1:${node.port}/ws?user=${user}`

  it('loses, repeats and reorders nothing while clients move and a master is killed', async () => {
    const topics = ['chaos:a', 'chaos:b', 'chaos:c', 'chaos:d']
    const total = 2_000
    const readers: Reader[] = []
    const attach = (reader: Reader, node: ForkedServer, name: string): void => {
      const client = createClient({ url: urlOf(node, name), retryDelayMs: () => 50, keepAlive: false })
      reader.client = client
      client.on('reset', ({ topic }) => reader.resets.get(topic)!.push(reader.received.get(topic)!.length))
      for (const topic of topics) {
        const since = reader.positions.get(topic)
        const sub = client.subscribe<number>(
          topic,
          (n, meta) => {
            reader.received.get(topic)!.push(n)
            if (!meta.volatile) reader.positions.set(topic, { epoch: meta.epoch, offset: meta.offset })
          },
          since ? { since } : {},
        )
        void sub.ready.catch(() => {})
      }
    }
    for (let i = 0; i < 6; i++) {
      const reader: Reader = {
        client: undefined as unknown as Client,
        received: new Map(topics.map((topic) => [topic, []])),
        resets: new Map(topics.map((topic) => [topic, []])),
        positions: new Map(),
      }
      attach(reader, nodes[i % 2]!, `reader${i}`)
      readers.push(reader)
    }
    await Promise.all(readers.map((reader) => waitFor(() => reader.client.state === 'open')))
    await new Promise((resolve) => setTimeout(resolve, 300)) // every subscribe answered

    const publisher = createClient({
      url: urlOf(nodes[0]!, 'publisher'),
      retryDelayMs: () => 50,
      keepAlive: false,
    })
    const acked = new Map<string, number[]>(topics.map((topic) => [topic, []]))
    let refused = 0
    const refusedNumbers: number[] = []
    let published = 0
    const publishing = (async () => {
      while (published < total) {
        const n = published++
        const topic = topics[n % topics.length]!
        try {
          await publisher.publish(topic, n, { timeoutMs: 5_000 })
          acked.get(topic)!.push(n)
        } catch {
          refused++
          refusedNumbers.push(n)
        }
        if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      }
    })()

    // Clients move to the other node (resuming from where they were), one every 150 ms.
    let moves = 0
    let moving = true
    const mover = (async () => {
      while (moving) {
        await new Promise((resolve) => setTimeout(resolve, 150))
        const reader = readers[moves % readers.length]!
        await reader.client.close()
        attach(reader, nodes[(moves + 1) % 2]!, `reader${moves % readers.length}`)
        moves++
      }
    })()
    // A third of the way in, the master of one topic's slot dies; its replica takes over.
    await waitFor(() => published > total / 3, 30_000)
    const master = await cluster.masterOf(`{${topics[0]}}`)
    const killedAt = Date.now()
    await master.stop()
    await cluster.waitHealthy(30_000)
    const failoverMs = Date.now() - killedAt
    await publishing
    moving = false
    await mover
    // Everything acknowledged reaches every reader (or a reset told it to resync).
    const lastAcked = new Map(topics.map((topic) => [topic, acked.get(topic)!.at(-1)!]))
    await waitFor(
      () =>
        readers.every((reader) =>
          topics.every((topic) => reader.received.get(topic)!.includes(lastAcked.get(topic)!)),
        ),
      30_000,
    )
    let lost = 0
    let duplicated = 0
    let outOfOrder = 0
    let resets = 0
    // The first few out-of-order neighbours, for the failure message.
    const disorder: string[] = []
    for (const reader of readers) {
      for (const topic of topics) {
        const got = reader.received.get(topic)!
        const cut = reader.resets.get(topic)!
        resets += cut.length
        duplicated += got.length - new Set(got).size
        // Order is promised for acknowledged publishes. One refused with UNAVAILABLE during the failover
        // has an unknown outcome: ioredis's cluster retry may still store it, after later ones (seen
        // here: 687 refused, stored after 695).
        const ackedOnes = new Set(acked.get(topic)!)
        const inOrder = got.filter((n) => ackedOnes.has(n))
        for (let i = 1; i < inOrder.length; i++)
          if (inOrder[i]! < inOrder[i - 1]!) {
            outOfOrder++
            if (disorder.length < 5) disorder.push(`${topic}: ${inOrder[i - 1]} before ${inOrder[i]}`)
          }
        // Before a reset the app resyncs, so only what came after the last one must be complete.
        const from = cut.length > 0 ? got[cut.at(-1)!]! : -1
        const seen = new Set(got)
        lost += acked.get(topic)!.filter((n) => n >= from && !seen.has(n)).length
      }
    }
    console.log(
      `chaos: ${total} published (${refused} refused while the master was down), ${moves} client moves, failover ${failoverMs} ms; per client and topic: ${lost} lost, ${duplicated} duplicated, ${outOfOrder} out of order, ${resets} resets`,
    )
    expect(
      { lost, duplicated, outOfOrder },
      `out of order: ${disorder.join('; ')}; refused: ${refusedNumbers.join(', ')}`,
    ).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
    await publisher.close()
    await Promise.all(readers.map((reader) => reader.client.close()))
  }, 120_000)
})

describe.skipIf(!available)(
  'two nodes on a Redis that restarts from an older snapshot, with the real client',
  () => {
    it('surfaces the lost history as a reset on every reader; after it, nothing acknowledged is missing', async () => {
      const { startRedis } = await import('@flumen/testing')
      const redis = await startRedis()
      const env = { REDIS_URL: redis.url, PREFIX: uniquePrefix(), POSITION_CHECK_MS: '200' }
      const [a, b] = await Promise.all([forkServer(fixture, env), forkServer(fixture, env)])
      try {
        const readers = [a, b, a, b].map((node, i) => {
          const client = createClient({
            url: `ws://127.0.0.1:${node.port}/ws?user=r${i}`,
            retryDelayMs: () => 50,
          })
          const got: number[] = []
          const resets: number[] = []
          client.on('reset', () => resets.push(got.length))
          client.subscribe<number>('snapshot', (n) => got.push(n))
          return { client, got, resets }
        })
        await Promise.all(readers.map((reader) => waitFor(() => reader.client.state === 'open')))
        await new Promise((resolve) => setTimeout(resolve, 300))
        const publisher = createClient({ url: `ws://127.0.0.1:${a.port}/ws?user=p`, retryDelayMs: () => 50 })
        const acked: number[] = []
        const publish = async (from: number, to: number): Promise<void> => {
          for (let n = from; n < to; n++) {
            try {
              await publisher.publish('snapshot', n, { timeoutMs: 3_000 })
              acked.push(n)
            } catch {
              // refused while Redis restarts
            }
          }
        }
        await publish(0, 300)
        await redis.cli('SAVE')
        await publish(300, 600)
        await waitFor(() => readers.every((reader) => reader.got.includes(599)))
        await redis.stop() // offsets 300..599 are lost with it
        await redis.start()
        await publish(600, 900)
        await waitFor(
          () => readers.every((reader) => reader.got.includes(899) && reader.resets.length > 0),
          15_000,
        )
        for (const reader of readers) {
          expect(reader.got.length - new Set(reader.got).size).toBe(0)
          const after = reader.got[reader.resets.at(-1)!]!
          const seen = new Set(reader.got)
          expect(acked.filter((n) => n >= after && !seen.has(n))).toEqual([])
        }
        await publisher.close()
        await Promise.all(readers.map((reader) => reader.client.close()))
      } finally {
        await Promise.all([a.kill(), b.kill()])
        await redis.destroy()
      }
    }, 60_000)
  },
)
