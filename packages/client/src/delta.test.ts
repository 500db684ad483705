import { createDelta } from '@flumen/broadcast'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyDelta, DeltaError } from './delta.js'

// The server encodes, the client decodes: these tests hold the two halves of the codec together.
const deltaOf = (source: string, target: string): string => {
  const delta = createDelta(source, target)
  expect(delta).toBeTypeOf('string')
  return delta!
}
const stateDocument = (seed: number): Record<string, unknown> => ({
  id: 'doc-1',
  version: seed,
  updatedAt: `2026-12-01T10:${String(seed % 60).padStart(2, '0')}:00Z`,
  rows: Array.from({ length: 80 }, (_, i) => ({
    id: i,
    name: `row ${i}`,
    value: i === seed % 80 ? seed : i * 3,
  })),
})

describe('deltas', () => {
  it('turn any text into any other, UTF-16 surrogates and JSON escapes included', () => {
    const text = fc.string({ unit: 'binary', maxLength: 400 })
    fc.assert(
      fc.property(text, text, (source, target) => {
        const delta = deltaOf(source, target)
        // A JSON trip is what a delta goes through on the wire.
        expect(applyDelta(source, JSON.parse(JSON.stringify(delta)))).toBe(target)
      }),
      { numRuns: 500 },
    )
  })

  it('turn a text into its edited self, mostly by copies', () => {
    const base = fc.string({ unit: 'grapheme', minLength: 50, maxLength: 2000 })
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 20 }), fc.string({ maxLength: 20 }))
    fc.assert(
      fc.property(base, fc.array(edit, { maxLength: 5 }), (source, edits) => {
        let target = source
        for (const [at, cut, text] of edits) {
          const i = at % (target.length + 1)
          target = target.slice(0, i) + text + target.slice(i + cut)
        }
        expect(applyDelta(source, deltaOf(source, target))).toBe(target)
      }),
    )
  })

  it('of a 10 KB state document with one field changed are small', () => {
    const before = JSON.stringify(stateDocument(1))
    const after = JSON.stringify(stateDocument(2))
    const delta = deltaOf(before, after)
    expect(before.length).toBeGreaterThan(2000)
    expect(delta.length).toBeLessThan(before.length / 20)
    expect(applyDelta(before, delta)).toBe(after)
  })

  it('are not made of repetitive text that would cost too much to match (the data goes whole)', () => {
    // Every block of the source has the same hash: each position would try every candidate.
    const source = 'a'.repeat(64 * 1024)
    const target = Array.from({ length: source.length }, (_, i) => (i % 17 === 0 ? 'b' : 'a')).join('')
    expect(createDelta(source, target)).toBeUndefined()
    // Repetitive but alike is cheap: long copies are taken at once.
    expect(applyDelta(source, deltaOf(source, source))).toBe(source)
  })

  it('refuse another base, a corrupt delta and garbage with a DeltaError', () => {
    const before = JSON.stringify(stateDocument(1))
    const after = JSON.stringify(stateDocument(2))
    const delta = deltaOf(before, after)
    expect(() => applyDelta(JSON.stringify(stateDocument(3)), delta)).toThrow(DeltaError)
    expect(() => applyDelta(before, delta.replace('@', ':'))).toThrow(DeltaError)
    expect(() => applyDelta(before, delta.slice(0, -3))).toThrow(DeltaError)
    for (const garbage of [
      '',
      '\n',
      'zz',
      '1\n',
      '1\n1:a',
      '1\n1@99999999,',
      '1\n5:ab;',
      '0\n0;',
      '~~~~~~~~~~\n',
    ])
      expect(() => applyDelta(before, garbage)).toThrow(DeltaError)
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (garbage) => {
        try {
          applyDelta(before, garbage)
        } catch (err) {
          expect(err).toBeInstanceOf(DeltaError)
        }
      }),
    )
  })
})
