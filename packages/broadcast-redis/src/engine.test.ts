import {
  describeEngineConformance,
  sharedRedisUrl as redisUrl,
  requireRedis,
  uniquePrefix,
} from '@flumen/testing'
import { describe, expect, it } from 'vitest'
import { redisEngine } from './index.js'

const redisAvailable = await requireRedis()

const prefix = uniquePrefix()

describe.skipIf(!redisAvailable)('redisEngine', () => {
  describeEngineConformance({
    name: 'redis',
    create: ({ historySize }) =>
      redisEngine({ url: redisUrl, prefix, history: { size: historySize }, logError: () => {} }),
    createPeerNode: ({ historySize }) =>
      redisEngine({ url: redisUrl, prefix, history: { size: historySize }, logError: () => {} }),
  })

  it('drops history older than ttlMs', async () => {
    const engine = redisEngine({ url: redisUrl, prefix: uniquePrefix(), history: { size: 100, ttlMs: 50 } })
    const first = await engine.publish('t', '1')
    await engine.publish('t', '2')
    expect((await engine.history('t', { epoch: first.epoch, offset: first.offset - 1 })).recovered).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect((await engine.history('t', { epoch: first.epoch, offset: first.offset - 1 })).recovered).toBe(
      false,
    )
    await engine.close()
  })

  it('rejects publishes with UNAVAILABLE when Redis cannot be reached', async () => {
    const engine = redisEngine({
      url: 'redis://127.0.0.1:1',
      prefix: uniquePrefix(),
      unavailableAfterMs: 100,
      logError: () => {},
    })
    await expect(engine.publish('t', '1')).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    await expect(engine.history('t')).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    await engine.close()
  })

  it('checks its options up front', () => {
    expect(() => redisEngine({ prefix: 'a{b' })).toThrow(/prefix/)
    expect(() => redisEngine({ nodeTtlMs: 0 })).toThrow(/nodeTtlMs/)
    expect(() => redisEngine({ history: { ttlMs: 100 }, keyTtlMs: 10 })).toThrow(/keyTtlMs/)
  })
})
