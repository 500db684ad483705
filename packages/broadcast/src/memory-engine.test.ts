import { describeEngineConformance } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryEngine } from './index.js'

describeEngineConformance({
  name: 'memory',
  create: ({ historySize }) => memoryEngine({ history: { size: historySize } }),
})

describe('memoryEngine', () => {
  it('drops history older than ttlMs', async () => {
    const engine = memoryEngine({ history: { size: 100, ttlMs: 50 } })
    const first = await engine.publish('t', '1')
    await engine.publish('t', '2')
    await new Promise((resolve) => setTimeout(resolve, 80))
    const late = await engine.history('t', { epoch: first.epoch, offset: first.offset })
    expect(late.recovered).toBe(false)
    await engine.close()
  })

  it('rejects bad options', () => {
    expect(() => memoryEngine({ history: { size: -1 } })).toThrow(/history.size/)
    expect(() => memoryEngine({ history: { ttlMs: 0 } })).toThrow(/history.ttlMs/)
    expect(() => memoryEngine({ history: { maxBytes: 0 } })).toThrow(/history.maxBytes/)
    expect(() => memoryEngine({ maxTopics: 0 })).toThrow(/maxTopics/)
    expect(() => memoryEngine({ maxTotalBytes: 1.5 })).toThrow(/maxTotalBytes/)
  })
})

describe('memoryEngine: bounds', () => {
  const engines: ReturnType<typeof memoryEngine>[] = []
  const create = (options: Parameters<typeof memoryEngine>[0] = {}): ReturnType<typeof memoryEngine> => {
    const engine = memoryEngine(options)
    engines.push(engine)
    return engine
  }
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.close()))
  })

  it('creates no state when a topic is only read', async () => {
    const engine = create()
    for (let i = 0; i < 10_000; i++) await engine.history(`read-only:${i}`, { epoch: 'x', offset: 3 })
    expect(engine.stats).toEqual({ topics: 0, messages: 0, bytes: 0 })
  })

  it('keeps a topic under history.maxBytes, and every topic under maxTotalBytes', async () => {
    const engine = create({ history: { size: 10_000, maxBytes: 10 * 1024 }, maxTotalBytes: 1024 * 1024 })
    const kilobyte = JSON.stringify('x'.repeat(1000))
    for (let i = 0; i < 100; i++) await engine.publish('big', kilobyte)
    expect(engine.stats.bytes).toBeLessThanOrEqual(10 * 1024)
    expect(engine.stats.messages).toBe(9)
    // One client spraying 64 KiB messages over fresh topics (what a socket at its rate limit could do).
    const chunk = JSON.stringify('y'.repeat(64 * 1024))
    for (let i = 0; i < 500; i++) await engine.publish(`spray:${i}`, chunk)
    expect(engine.stats.bytes).toBeLessThanOrEqual(1024 * 1024)
    expect(engine.stats.topics).toBeLessThan(20)
  })

  it('forgets the least recently published topic past maxTopics; its old position no longer recovers', async () => {
    const engine = create({ maxTopics: 100 })
    const first = await engine.publish('topic:0', '0')
    await engine.subscribe('topic:1')
    await engine.publish('topic:1', '1')
    for (let i = 2; i < 250; i++) await engine.publish(`topic:${i}`, String(i))
    expect(engine.stats.topics).toBe(100)
    // Subscribed on this node: kept, though it was published to long ago.
    expect((await engine.history('topic:1')).position.offset).toBe(1)
    await engine.publish('topic:0', 'again')
    const old = await engine.history('topic:0', { epoch: first.epoch, offset: first.offset })
    expect(old.recovered).toBe(false)
  })

  it('forgets idle topics once their history aged out, unless subscribed', async () => {
    const engine = create({ history: { ttlMs: 40 }, sweepIntervalMs: 20 })
    const gone = await engine.publish('idle', '1')
    await engine.subscribe('watched')
    await engine.publish('watched', '1')
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(engine.stats).toEqual({ topics: 1, messages: 0, bytes: 0 })
    const back = await engine.history('idle', { epoch: gone.epoch, offset: gone.offset })
    expect(back.recovered).toBe(false)
    expect(back.position.epoch).not.toBe(gone.epoch)
    expect((await engine.history('watched')).position.offset).toBe(1)
  })
})
