import { describe, expect, it } from 'vitest'
import { describeEngineConformance } from './conformance.js'
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

  it('rejects bad history options', () => {
    expect(() => memoryEngine({ history: { size: -1 } })).toThrow(/history.size/)
    expect(() => memoryEngine({ history: { ttlMs: 0 } })).toThrow(/history.ttlMs/)
  })
})
