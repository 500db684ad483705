import { waitFor } from '@flumen/testing'
import { describe, expect, it } from 'vitest'
import { converged, editor, node } from './editors.fixture.js'

describe('Yjs documents over the hub', () => {
  it('two and three editors typing at once converge on the same text', async () => {
    const { url, logged } = await node()
    const ada = await editor(url, 'ada')
    const bob = await editor(url, 'bob')
    ada.text.insert(0, 'Hello')
    bob.text.insert(0, 'World')
    await converged([ada, bob])
    const cy = await editor(url, 'cy')
    expect(cy.text.toString()).toBe(ada.text.toString()) // a late joiner gets the state in its sync
    // Three at once, interleaved keystrokes.
    for (let i = 0; i < 20; i++) {
      ada.text.insert(ada.text.length, 'a')
      bob.text.insert(0, 'b')
      cy.text.insert(Math.floor(cy.text.length / 2), 'c')
    }
    const text = await converged([ada, bob, cy])
    expect(text).toHaveLength(10 + 60)
    for (const letter of 'abc') expect(text.split(letter).length - 1).toBeGreaterThanOrEqual(20)
    expect([...ada.errors, ...bob.errors, ...cy.errors, ...logged]).toEqual([])
  })

  it('an editor that goes offline keeps editing, and merges when it is back', async () => {
    const server = await node()
    const ada = await editor(server.url, 'ada')
    const bob = await editor(server.url, 'bob')
    ada.text.insert(0, 'shared ')
    await converged([ada, bob], 'shared ')
    // Bob's network goes: his connection drops and every reconnect is refused.
    server.blocked.add('bob')
    const [connection] = server.hub
      .inspect()
      .connections.filter((c) => (c.user as { id: string }).id === 'bob')
    server.hub.disconnect(connection!.id)
    await waitFor(() => bob.client.state === 'reconnecting')
    bob.text.insert(bob.text.length, 'offline-bob ')
    ada.text.insert(0, 'online-ada ')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(ada.text.toString()).not.toContain('offline-bob')
    server.blocked.delete('bob')
    const text = await converged([ada, bob])
    expect(text).toContain('offline-bob')
    expect(text).toContain('online-ada')
    // A third editor sees both: the server has them.
    expect((await editor(server.url, 'cy')).text.toString()).toBe(text)
  })

  it('shares awareness, and drops a state as soon as its connection leaves', async () => {
    const { url } = await node()
    const ada = await editor(url, 'ada')
    const bob = await editor(url, 'bob')
    ada.provider.awareness!.setLocalStateField('cursor', { index: 3 })
    await waitFor(() => bob.provider.awareness!.getStates().get(ada.doc.clientID)?.cursor?.index === 3)
    // A late joiner gets the states in its sync.
    const cy = await editor(url, 'cy')
    await waitFor(() => cy.provider.awareness!.getStates().get(ada.doc.clientID)?.cursor?.index === 3)
    await ada.client.close() // no goodbye from ada's side: the server removes her state
    await waitFor(() => !bob.provider.awareness!.getStates().has(ada.doc.clientID), 3_000)
    await waitFor(() => !cy.provider.awareness!.getStates().has(ada.doc.clientID), 3_000)
  })

  it('loads a document once per node, unloads it when idle after a snapshot, and loads it again', async () => {
    const { url, docs, hub } = await node({ yjs: { idleMs: 200 } })
    const [ada, bob] = await Promise.all([editor(url, 'ada'), editor(url, 'bob')])
    expect(docs.stats.loaded).toBe(1)
    ada.text.insert(0, 'kept')
    await converged([ada, bob], 'kept')
    await ada.close()
    await bob.close()
    await waitFor(() => docs.stats.loaded === 0, 3_000)
    expect(docs.stats.snapshots).toBe(1)
    expect(hub.stats.topics).toBe(0) // the node let go of the topic too
    const cy = await editor(url, 'cy')
    expect(cy.text.toString()).toBe('kept')
    expect(docs.stats.loaded).toBe(1)
  })
})
