import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisEngine } from '@flumen/broadcast-redis'
import { sqliteEngine } from '@flumen/broadcast-sqlite'
import { requireRedis, sharedRedisUrl, uniquePrefix, waitFor } from '@flumen/testing'
import { describe, expect, it } from 'vitest'
import { cleanups, converged, editor, startNode } from './editors.fixture.js'

const redisAvailable = await requireRedis()

describe('documents that outlive a node', () => {
  it('on SQLite, a restart after a crash loses no edit: the snapshot and the updates after it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flumen-yjs-sqlite-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'flumen.db')
    // A snapshot every 10 updates, a history of 5 (less than the document), and a crash: what came
    // after the last snapshot is only in the history.
    const first = await startNode({
      engine: sqliteEngine({ file, history: { size: 5 } }),
      crash: true,
      yjs: { snapshots: { afterUpdates: 10 } },
    })
    const port = first.server.port
    const ada = await editor(first.url, 'ada')
    for (let i = 0; i < 10; i++) ada.text.insert(ada.text.length, `${i}`)
    await waitFor(() => first.docs.stats.updates === 10 && first.docs.stats.snapshots === 1)
    for (const word of [' after', ' the', ' snapshot']) ada.text.insert(ada.text.length, word)
    await waitFor(() => first.docs.stats.updates === 13)
    expect(first.docs.stats.snapshots).toBe(1)
    const expected = ada.text.toString()
    await ada.close()
    await first.close()

    const second = await startNode({ engine: sqliteEngine({ file, history: { size: 5 } }), port })
    cleanups.push(() => second.close())
    const bob = await editor(second.url, 'bob')
    expect(bob.text.toString()).toBe(expected)
    expect(second.logged).toEqual([])
  })

  it.skipIf(!redisAvailable)(
    'on Redis, an editor moves to another node when its node goes, and no edit is lost',
    async () => {
      const prefix = uniquePrefix()
      const engine = () => redisEngine({ url: sharedRedisUrl, prefix })
      const a = await startNode({ engine: engine() })
      const b = await startNode({ engine: engine() })
      cleanups.push(() => b.close())
      const port = a.server.port
      const ada = await editor(a.url, 'ada')
      const bob = await editor(b.url, 'bob')
      ada.text.insert(0, 'from a; ')
      bob.text.insert(0, 'from b; ')
      await converged([ada, bob])
      // Awareness crosses nodes too: bob, on B, sees ada's cursor, set on A.
      ada.provider.awareness!.setLocalStateField('cursor', 7)
      await waitFor(() => bob.provider.awareness!.getStates().get(ada.doc.clientID)?.cursor === 7)
      // A connection on A goes without a word: node A removes its state, and bob on B sees it go.
      const cy = await editor(a.url, 'cy')
      cy.provider.awareness!.setLocalStateField('cursor', 1)
      await waitFor(() => bob.provider.awareness!.getStates().get(cy.doc.clientID)?.cursor === 1)
      await cy.client.close()
      await waitFor(() => !bob.provider.awareness!.getStates().has(cy.doc.clientID), 3_000)
      // Node A goes; ada keeps typing while she has no node, then a new node takes A's address.
      await a.close()
      await waitFor(() => ada.client.state === 'reconnecting')
      ada.text.insert(ada.text.length, 'while away; ')
      bob.text.insert(bob.text.length, 'meanwhile; ')
      const c = await startNode({ engine: engine(), port })
      cleanups.push(() => c.close())
      const text = await converged([ada, bob], undefined, 10_000)
      // Back on the new node, ada's awareness reaches bob again.
      ada.provider.awareness!.setLocalStateField('cursor', 8)
      await waitFor(() => bob.provider.awareness!.getStates().get(ada.doc.clientID)?.cursor === 8)
      for (const part of ['from a; ', 'from b; ', 'while away; ', 'meanwhile; ']) expect(text).toContain(part)
      // A newcomer on the new node loads it from Redis.
      expect((await editor(c.url, 'cy')).text.toString()).toBe(text)
      expect([...a.logged, ...b.logged, ...c.logged]).toEqual([])
    },
  )
})
