import { describe, expect, it } from 'vitest'
import { prepareBatch, prepareFrame } from './index.js'

describe('prepareFrame / prepareBatch', () => {
  it('marks strings as text and bytes as binary', () => {
    expect(prepareFrame('x')).toMatchObject({ binary: false, volatile: false, wire: {} })
    expect(prepareFrame(new Uint8Array([1]))).toMatchObject({ binary: true })
    expect(prepareFrame('x', { volatile: true }).volatile).toBe(true)
    const position = { topic: 't', epoch: 'e', offset: 3 }
    expect(prepareFrame('x', { position }).position).toBe(position)
    expect('position' in prepareFrame('x')).toBe(false)
  })

  it('batches frames in order; one frame is itself; none is an error', () => {
    const a = prepareFrame('a')
    const b = prepareFrame('b', { volatile: true })
    expect(prepareBatch([a])).toBe(a)
    const batch = prepareBatch([a, b])
    expect(batch.parts).toEqual([a, b])
    expect(batch.volatile).toBe(false)
    expect(() => prepareBatch([])).toThrow(/no frames/)
  })
})
