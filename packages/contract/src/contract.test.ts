import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineContract } from './contract.js'
import { check } from './schema.js'

const chat = z.object({ text: z.string().min(1), from: z.object({ name: z.string() }) })
const contract = defineContract({
  topics: {
    'room:{id}': { message: chat, presence: z.object({ id: z.string() }) },
    'room:lobby': { message: v.object({ notice: v.string() }) },
    'doc:{doc}:cursor:{user}': { message: v.object({ x: v.number(), y: v.number() }) },
    dashboard: { message: z.object({ ws: z.number() }) },
  },
  methods: {
    'chat.send': { input: z.object({ text: z.string() }), output: z.object({ offset: z.number() }) },
  },
})

describe('defineContract', () => {
  it('matches exact names before patterns, and patterns with their parameters', () => {
    expect(contract.match('room:lobby')?.pattern).toBe('room:lobby')
    expect(contract.match('room:42')).toMatchObject({ pattern: 'room:{id}', params: { id: '42' } })
    expect(contract.match('doc:a:b:cursor:u1')).toMatchObject({
      pattern: 'doc:{doc}:cursor:{user}',
      params: { doc: 'a:b', user: 'u1' },
    })
    expect(contract.match('dashboard')?.pattern).toBe('dashboard')
    // A parameter is never empty, and the rest is literal (no regular expression in a name).
    expect(contract.match('room:')).toBeUndefined()
    expect(contract.match('dashboardx')).toBeUndefined()
    expect(contract.match('rooms:1')).toBeUndefined()
  })

  it('builds topic names from patterns, refusing missing parameters', () => {
    expect(contract.topic('room:{id}', { id: '42' })).toBe('room:42')
    expect(contract.topic('dashboard', {})).toBe('dashboard')
    // @ts-expect-error: id is required
    expect(() => contract.topic('room:{id}', {})).toThrow(/needs id/)
    // @ts-expect-error: not a pattern of the contract
    expect(() => contract.topic('nope', {})).toThrow(/not a topic/)
  })

  it('refuses what is not a contract, with the place named', () => {
    // @ts-expect-error: no topics
    expect(() => defineContract({})).toThrow(/topics must be an object/)
    expect(() => defineContract({ topics: { a: { message: { parse() {} } as never } } })).toThrow(
      /topics\['a'\]\.message must be a Standard Schema/,
    )
    expect(() => defineContract({ topics: { 'a:{x}:{x}': { message: chat } } })).toThrow(/twice/)
    expect(() => defineContract({ topics: { 'a:{x-y}': { message: chat } } })).toThrow(/parameters are/)
    expect(() =>
      defineContract({ topics: {}, methods: { m: { input: chat, output: 'no' as never } } }),
    ).toThrow(/methods\['m'\]\.output/)
  })
})

describe('check', () => {
  it('reports issues with their paths the same way for zod and valibot', () => {
    for (const schema of [
      chat,
      v.object({ text: v.pipe(v.string(), v.minLength(1)), from: v.object({ name: v.string() }) }),
    ]) {
      const result = check(schema, { text: '', from: { name: 7 } })
      expect(result).toMatchObject({ ok: false })
      if (result instanceof Promise || result.ok) throw new Error('expected issues, synchronously')
      expect(result.issues.map((issue) => issue.path)).toEqual([['text'], ['from', 'name']])
      expect(result.message).toMatch(/^text: .+; from\.name: .+$/)
      expect(check(schema, { text: 'hi', from: { name: 'a' } })).toEqual({
        ok: true,
        value: { text: 'hi', from: { name: 'a' } },
      })
    }
  })

  it('awaits an asynchronous schema', async () => {
    const slow = z.string().refine(async (text) => text === 'ok')
    const pending = check(slow, 'no')
    expect(pending).toBeInstanceOf(Promise)
    expect(await pending).toMatchObject({ ok: false })
    expect(await check(slow, 'ok')).toEqual({ ok: true, value: 'ok' })
  })

  it('sends at most 20 issues', () => {
    const result = check(
      z.array(z.string()),
      Array.from({ length: 500 }, (_, i) => i),
    )
    if (result instanceof Promise || result.ok) throw new Error('expected issues')
    expect(result.issues).toHaveLength(20)
  })
})
