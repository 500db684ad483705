// What Redis really does in production, on a Redis of the test's own: stalls, restarts that lose
// everything, restarts from an older snapshot, pub/sub messages that never arrive, lost presence.

import { execFile } from 'node:child_process'
import type { EngineMessage, PresenceChange } from '@flumen/broadcast'
import type { RedisServer } from '@flumen/testing'
import { requireRedis, startRedis, uniquePrefix, waitFor } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import type { RedisEngine, RedisEngineOptions } from './index.js'
import { redisEngine } from './index.js'

const available = await requireRedis()

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const ownRedis = async (args?: string[]): Promise<RedisServer> => {
  const server = await startRedis(args ? { args } : {})
  cleanups.push(() => server.destroy())
  return server
}

interface Watched {
  engine: RedisEngine
  messages: EngineMessage[]
  presence: PresenceChange[]
}

const engineOn = (server: RedisServer, prefix: string, options: RedisEngineOptions = {}): Watched => {
  const engine = redisEngine({ url: server.url, prefix, logError: () => {}, ...options })
  cleanups.push(() => engine.close())
  const watched: Watched = { engine, messages: [], presence: [] }
  engine.attach({
    onMessage: (message) => watched.messages.push(message),
    onPresence: (change) => watched.presence.push(change),
  })
  return watched
}

const key = (prefix: string, topic: string, suffix: string): string => `${prefix}{${topic}}:${suffix}`

describe.skipIf(!available)('redisEngine when Redis misbehaves', () => {
  it('rejects publishes to a stalled Redis with UNAVAILABLE within the command timeout, with no listener warning', async () => {
    const server = await ownRedis(['--enable-debug-command', 'yes'])
    const { engine } = engineOn(server, uniquePrefix(), { commandTimeoutMs: 300 })
    await engine.publish('t', '0')
    const warnings: string[] = []
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name)
    }
    process.on('warning', onWarning)
    cleanups.push(() => process.off('warning', onWarning))
    const sleeping = new Promise<void>((resolve) =>
      execFile('redis-cli', ['-p', String(server.port), 'DEBUG', 'SLEEP', '2'], () => resolve()),
    )
    // Stalled once a probe of our own goes unanswered.
    await waitFor(async () => {
      const answered = await Promise.race([
        server.cli('PING').then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 50)),
      ])
      return !answered
    })
    const started = Date.now()
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => engine.publish('t', String(i))),
    )
    expect(Date.now() - started).toBeLessThan(1_500)
    expect(
      results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'stored')),
    ).toEqual(Array.from({ length: 30 }, () => 'UNAVAILABLE'))
    await sleeping
    // Down for good: 50 publishes waiting for it never add a listener each.
    await server.stop()
    await Promise.allSettled(Array.from({ length: 50 }, () => engine.publish('t', 'x')))
    expect(warnings).toEqual([])
  })

  it('gives a topic a new epoch when Redis comes back from an older snapshot: no offset is reused', async () => {
    const server = await ownRedis()
    const prefix = uniquePrefix()
    const node = engineOn(server, prefix, { positionCheckMs: 100 })
    await node.engine.subscribe('snap')
    for (let i = 1; i <= 10; i++) await node.engine.publish('snap', String(i))
    await server.cli('SAVE')
    for (let i = 11; i <= 30; i++) await node.engine.publish('snap', String(i))
    await waitFor(() => node.messages.length === 30)
    const before = node.messages.at(-1)!
    await server.stop() // everything after the SAVE is lost
    await server.start()
    expect(await server.cli('HGET', key(prefix, 'snap', 'm'), 'o')).toBe('10')
    // The node sees Redis behind what it delivered: a new epoch, going on after offset 30.
    await waitFor(
      async () => (await server.cli('HGET', key(prefix, 'snap', 'm'), 'e')) !== before.epoch,
      5_000,
    )
    const next = await node.engine.publish('snap', '"after"')
    expect(next.epoch).not.toBe(before.epoch)
    expect(next.offset).toBe(31)
    await waitFor(() => node.messages.at(-1)?.data === '"after"')
    // What was delivered never repeats an (epoch, offset) with other data.
    const seen = new Map<string, string>()
    for (const message of node.messages) {
      const id = `${message.epoch}:${message.offset}`
      expect(seen.get(id) ?? message.data).toBe(message.data)
      seen.set(id, message.data)
    }
    // A client that followed the old history cannot "recover" into the new one.
    const history = await node.engine.history('snap', { epoch: before.epoch, offset: before.offset })
    expect(history.recovered).toBe(false)
  })

  it('says it is unavailable while Redis is down, and available again once it is back', async () => {
    const server = await ownRedis()
    const node = engineOn(server, uniquePrefix())
    await node.engine.publish('up', '1')
    expect(node.engine.available).toBe(true)
    await server.stop()
    await waitFor(() => node.engine.available === false, 5_000)
    await server.start()
    await waitFor(() => node.engine.available === true, 10_000)
    await node.engine.close()
    expect(node.engine.available).toBe(false)
  })

  it('a restart without persistence starts every topic over under a new epoch', async () => {
    const server = await ownRedis()
    const node = engineOn(server, uniquePrefix())
    const first = await node.engine.publish('gone', '1')
    await server.stop()
    await server.start()
    await waitFor(async () => {
      try {
        await node.engine.publish('gone', '2')
        return true
      } catch {
        return false
      }
    }, 5_000)
    const after = await node.engine.history('gone', { epoch: first.epoch, offset: first.offset })
    expect(after.recovered).toBe(false)
    expect(after.position.epoch).not.toBe(first.epoch)
  })

  it('delivers, in order and once, messages whose pub/sub copy never arrived', async () => {
    const server = await ownRedis()
    const prefix = uniquePrefix()
    const node = engineOn(server, prefix, { positionCheckMs: 100 })
    await node.engine.subscribe('lossy')
    await node.engine.publish('lossy', '"1"')
    await waitFor(() => node.messages.length === 1)
    // Two messages reach the stream but not the channel (what a failover can do to pub/sub).
    const meta = key(prefix, 'lossy', 'm')
    for (const offset of [2, 3]) {
      await server.cli('HSET', meta, 'o', String(offset))
      await server.cli(
        'XADD',
        key(prefix, 'lossy', 's'),
        `${offset}-1`,
        'd',
        `"${offset}"`,
        'g',
        '',
        't',
        String(Date.now()),
      )
      await server.cli('RPUSH', key(prefix, 'lossy', 'z'), '67')
    }
    // The position check finds them without any further publish.
    await waitFor(() => node.messages.length === 3, 3_000)
    // A gap seen on the channel is filled at once.
    await server.cli('HSET', meta, 'o', '4')
    await server.cli('XADD', key(prefix, 'lossy', 's'), '4-1', 'd', '"4"', 'g', '', 't', String(Date.now()))
    await node.engine.publish('lossy', '"5"')
    await waitFor(() => node.messages.length === 5)
    expect(node.messages.map((m) => m.data)).toEqual(['"1"', '"2"', '"3"', '"4"', '"5"'])
    expect(node.messages.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5])
  })

  it('puts presence back after Redis lost it, and tells the other nodes', async () => {
    const server = await ownRedis()
    const prefix = uniquePrefix()
    const a = engineOn(server, prefix, { nodeTtlMs: 600 })
    const b = engineOn(server, prefix, { nodeTtlMs: 600 })
    await a.engine.subscribe('room')
    await b.engine.subscribe('room')
    for (let i = 0; i < 20; i++)
      await a.engine.presenceAdd('room', { connectionId: `c${i}`, userId: `u${i}`, info: { id: `u${i}` } })
    expect(await b.engine.presenceList('room')).toHaveLength(20)
    await server.cli('FLUSHALL')
    expect(await b.engine.presenceList('room')).toHaveLength(0)
    b.presence.length = 0
    await waitFor(async () => (await b.engine.presenceList('room')).length === 20, 5_000)
    await waitFor(() => b.presence.flatMap((change) => change.join ?? []).length === 20)
  })

  it('keeps a topic within history.maxBytes, trimming by bytes as well as count', async () => {
    const server = await ownRedis()
    const prefix = uniquePrefix()
    const node = engineOn(server, prefix, { history: { size: 1000, maxBytes: 10 * 1024 } })
    const kilobyte = JSON.stringify('k'.repeat(1000))
    const first = await node.engine.publish('big', kilobyte)
    for (let i = 0; i < 99; i++) await node.engine.publish('big', kilobyte)
    expect(Number(await server.cli('XLEN', key(prefix, 'big', 's')))).toBe(9)
    expect(Number(await server.cli('LLEN', key(prefix, 'big', 'z')))).toBe(9)
    expect((await node.engine.history('big', { epoch: first.epoch, offset: first.offset })).recovered).toBe(
      false,
    )
    const recent = await node.engine.history('big', { epoch: first.epoch, offset: 95 })
    expect(recent.messages.map((m) => m.offset)).toEqual([96, 97, 98, 99, 100])
  })
})
