import { describe, expect, it } from 'vitest'
import { drainConnections } from './index.js'

describe('drainConnections', () => {
  it('closes every connection and returns once the set is empty', async () => {
    const open = new Set(['a', 'b'])
    const forced: string[] = []
    const closing = (connection: string): void => {
      setTimeout(() => open.delete(connection), 20)
    }
    await drainConnections(open, new AbortController().signal, closing, (c) => forced.push(c))
    expect(open.size).toBe(0)
    expect(forced).toEqual([])
  })

  it('forces what is left when the deadline passes', async () => {
    const open = new Set(['stuck'])
    const forced: string[] = []
    const started = Date.now()
    await drainConnections(
      open,
      AbortSignal.timeout(50),
      () => {},
      (c) => forced.push(c),
    )
    expect(forced).toEqual(['stuck'])
    expect(Date.now() - started).toBeLessThan(1_000)
  })
})
