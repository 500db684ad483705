import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { forkServer, waitFor } from '@flumen/testing'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { sqliteEngine } from './index.js'

const fixture = new URL('./crash.fixture.ts', import.meta.url).pathname
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

describe('sqliteEngine after a SIGKILL in the middle of a publish flood', () => {
  for (const sync of ['normal', 'full'] as const) {
    it(`keeps every acknowledged publish, in order, and nothing half written (synchronous ${sync})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'flumen-sqlite-crash-'))
      dirs.push(dir)
      const file = join(dir, 'history.db')
      const child = await forkServer(fixture, { FILE: file, SYNC: sync })
      const acked = new Map<number, number>()
      child.child.on('message', (message: { acked?: number; n?: number }) => {
        if (message.acked !== undefined) acked.set(message.acked, message.n!)
      })
      await waitFor(() => acked.size >= 3_000, 30_000, 'the flood did not start')
      await child.kill('SIGKILL') // mid-flood: a transaction is in flight
      const lastAcked = Math.max(...acked.keys())

      // The file is a sound database, and the engine opens it.
      const raw = new Database(file, { readonly: true })
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok')
      raw.close()
      const engine = sqliteEngine({ file })
      try {
        const { position } = await engine.history('flood')
        expect(position.offset).toBeGreaterThanOrEqual(lastAcked)
        const { recovered, messages } = await engine.history('flood', { epoch: position.epoch, offset: 0 })
        expect(recovered).toBe(true)
        // Every offset from 1 to the last stored, each a whole message, in publish order.
        expect(messages.map((m) => m.offset)).toEqual(
          Array.from({ length: position.offset }, (_, i) => i + 1),
        )
        for (const message of messages) expect(JSON.parse(message.data).n).toBe(message.offset - 1)
        // What was acknowledged is what is stored.
        for (const [offset, n] of acked) expect(JSON.parse(messages[offset - 1]!.data).n).toBe(n)
        console.log(
          `crash (${sync}): ${acked.size} acknowledged before SIGKILL, ${position.offset} stored after restart, none lost`,
        )
      } finally {
        await engine.close()
      }
    }, 60_000)
  }
})
