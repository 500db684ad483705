// `npm run redis-cost -w @flumen/bench`: what a publish costs Redis, for the sizing section of
// docs/BENCHMARKS.md. Publishes through the Redis engine (one subscribing node) to a Redis of its
// own and to a 3-master Cluster, then reads Redis's own CPU time and memory.

import { redisEngine } from '@flumen/broadcast-redis'
import type { RedisServer } from '@flumen/testing'
import { startRedis, startRedisCluster } from '@flumen/testing'

const publishes = 20_000
const topics = 100

const cpuSeconds = async (servers: readonly RedisServer[]): Promise<number> => {
  let total = 0
  for (const server of servers) {
    const info = await server.cli('info', 'cpu')
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1])
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
    total += user + sys
  }
  return total
}

const memory = async (servers: readonly RedisServer[]): Promise<number> => {
  let total = 0
  for (const server of servers)
    total += Number(/used_memory:(\d+)/.exec(await server.cli('info', 'memory'))?.[1])
  return total
}

const measure = async (
  label: string,
  servers: readonly RedisServer[],
  topology: { url: string } | { cluster: { host: string; port: number }[] },
  payloadBytes: number,
): Promise<void> => {
  const prefix = `cost:${label.replace(/\W+/g, '-')}:${payloadBytes}:`
  const publisher = redisEngine({ ...topology, prefix, logError: () => {} })
  const subscriber = redisEngine({ ...topology, prefix, logError: () => {} })
  let received = 0
  subscriber.attach({ onMessage: () => received++, onPresence: () => {} })
  for (let i = 0; i < topics; i++) await subscriber.subscribe(`t${i}`)
  const data = JSON.stringify('x'.repeat(payloadBytes - 2))
  await publisher.publish('t0', data) // scripts loaded, connections warm
  const cpuBefore = await cpuSeconds(servers)
  const memoryBefore = await memory(servers)
  const started = Date.now()
  for (let sent = 0; sent < publishes; sent += 100)
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => publisher.publish(`t${(sent + i) % topics}`, data)),
    )
  while (received < publishes) await new Promise((resolve) => setTimeout(resolve, 10))
  const seconds = (Date.now() - started) / 1000
  const cpu = (await cpuSeconds(servers)) - cpuBefore
  const kept = (await memory(servers)) - memoryBefore
  console.log(
    `${label}, ${payloadBytes}-byte messages: Redis CPU ${((cpu * 1e6) / publishes).toFixed(1)} µs per publish ` +
      `(stored, trimmed, delivered to one subscribing node), ${Math.round(publishes / seconds)} publishes/s ` +
      `from one node, ${Math.round(kept / publishes)} bytes of Redis memory per kept message`,
  )
  await Promise.all([publisher.close(), subscriber.close()])
}

const single = await startRedis()
try {
  for (const bytes of [64, 1024]) await measure('one Redis', [single], { url: single.url }, bytes)
} finally {
  await single.destroy()
}
const cluster = await startRedisCluster({ masters: 3, replicas: 0 })
try {
  for (const bytes of [64, 1024])
    await measure('3-master Cluster', cluster.nodes, { cluster: [...cluster.startupNodes] }, bytes)
} finally {
  await cluster.destroy()
}
