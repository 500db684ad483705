import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Engine, EngineMessage } from '@flumen/broadcast'
import { describeEngineConformance } from '@flumen/testing'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { SqliteEngine, SqliteEngineOptions } from './index.js'
import { sqliteEngine } from './index.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flumen-sqlite-test-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let files = 0
const freshFile = (): string => join(dir, `history-${files++}.db`)

describeEngineConformance({
  name: 'sqlite',
  create: ({ historySize }) => sqliteEngine({ file: freshFile(), history: { size: historySize } }),
})

describe('sqliteEngine', () => {
  const engines: Engine[] = []
  const open = (options: SqliteEngineOptions): SqliteEngine => {
    const engine = sqliteEngine(options)
    engines.push(engine)
    return engine
  }
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.close()))
  })

  it('keeps history, offsets and epochs across a restart: a client recovers exactly its gap', async () => {
    const file = freshFile()
    const before = open({ file })
    const stored: EngineMessage[] = []
    for (let i = 1; i <= 50; i++) stored.push(await before.publish('room:1', JSON.stringify(i)))
    const seen = { epoch: stored[19]!.epoch, offset: stored[19]!.offset }
    await before.close()

    const after = open({ file })
    const result = await after.history('room:1', seen)
    expect(result.recovered).toBe(true)
    expect(result.messages.map((m) => Number(m.data))).toEqual(Array.from({ length: 30 }, (_, i) => i + 21))
    expect(result.position).toEqual({ epoch: stored[0]!.epoch, offset: 50 })
    // Offsets go on from where they were, in the same epoch.
    const next = await after.publish('room:1', '51')
    expect([next.epoch, next.offset]).toEqual([stored[0]!.epoch, 51])
    // A position read before the first message of a topic recovers it after a restart, too.
    const empty = await after.history('room:2')
    await after.close()
    const again = open({ file })
    await again.publish('room:2', '"first"')
    expect((await again.history('room:2', empty.position)).messages.map((m) => m.data)).toEqual(['"first"'])
  })

  it('commits the publishes of one turn in one transaction, and acknowledges after it', async () => {
    const engine = open({ file: freshFile() })
    const acks = await Promise.all(
      Array.from({ length: 500 }, (_, i) => engine.publish(`t:${i % 5}`, String(i))),
    )
    expect(engine.stats.commits).toBe(1)
    expect(engine.stats.published).toBe(500)
    expect(acks.filter((m) => m.topic === 't:0').map((m) => m.offset)).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    )
  })

  it('remembers publish keys across a restart: a retry after it is not stored twice', async () => {
    const file = freshFile()
    const first = open({ file })
    const stored = await first.publish('keys', '"once"', { key: 'u:ann:k1' })
    await first.close()
    const second = open({ file })
    const retry = await second.publish('keys', '"once"', { key: 'u:ann:k1' })
    expect(retry.offset).toBe(stored.offset)
    expect((await second.history('keys')).position.offset).toBe(1)
  })

  it('trims each topic by count and bytes, and prunes by age and total bytes in the background', async () => {
    const engine = open({
      file: freshFile(),
      history: { size: 10, maxBytes: 64 * 5 + 100, ttlMs: 200 },
      maxTotalBytes: 2_000,
      pruneIntervalMs: 50,
    })
    for (let i = 0; i < 30; i++) await engine.publish('count', String(i).padStart(2, '0'))
    const kept = await engine.history('count', {
      epoch: (await engine.history('count')).position.epoch,
      offset: 24,
    })
    // 66 bytes a message: 6 fit in 420 (fewer than the 10 the count allows).
    expect(kept.recovered).toBe(true)
    expect(kept.messages.map((m) => m.data)).toEqual(['24', '25', '26', '27', '28', '29'])
    for (let i = 0; i < 40; i++) await engine.publish(`many:${i}`, '"x"')
    await expect.poll(() => engine.stats.bytes, { timeout: 3_000 }).toBeLessThanOrEqual(2_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await expect.poll(() => engine.stats.bytes, { timeout: 3_000 }).toBe(0)
    const aged = await engine.history('count', { epoch: kept.position.epoch, offset: 28 })
    expect(aged.recovered).toBe(false)
  })

  it('refuses a file that is not SQLite, another program’s database or a damaged one, with a clear error', async () => {
    const garbage = freshFile()
    await writeFile(garbage, Buffer.alloc(8192, 0x5a))
    expect(() => sqliteEngine({ file: garbage })).toThrow(expect.objectContaining({ code: 'NOT_A_DATABASE' }))

    const foreign = freshFile()
    const other = new Database(foreign)
    other.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)')
    other.pragma('application_id = 1234')
    other.close()
    expect(() => sqliteEngine({ file: foreign })).toThrow(/another program's database/)

    const damaged = freshFile()
    const engine = sqliteEngine({ file: damaged })
    for (let i = 0; i < 2_000; i++) await engine.publish(`d:${i % 20}`, JSON.stringify('x'.repeat(200)))
    await engine.close()
    // Scribble over the middle of the file (its pages), as a bad disk or a stray write would.
    const { open: openFile } = await import('node:fs/promises')
    const handle = await openFile(damaged, 'r+')
    await handle.write(Buffer.alloc(16_384, 0xff), 0, 16_384, 32_768)
    await handle.close()
    expect(() => sqliteEngine({ file: damaged })).toThrow(expect.objectContaining({ code: 'CORRUPT' }))
  })

  it('checks its options up front', () => {
    expect(() => sqliteEngine({ file: '' })).toThrow(/file must be a path/)
    expect(() => sqliteEngine({ file: freshFile(), synchronous: 'off' as never })).toThrow(/synchronous/)
    expect(() => sqliteEngine({ file: freshFile(), maxTotalBytes: 0 })).toThrow(/maxTotalBytes/)
  })
})
