import { describe, expect, it } from 'vitest'
import { createId } from './index.js'

describe('createId', () => {
  it('returns distinct URL-safe 16-character ids across pool refills', () => {
    const ids = new Set(Array.from({ length: 2_000 }, () => createId()))
    expect(ids.size).toBe(2_000)
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/)
  })
})
