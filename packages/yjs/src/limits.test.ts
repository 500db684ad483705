import { leakCheck, openProtocolClient, waitFor } from '@flumen/testing'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { cleanups, converged, editor, node, openEditor } from './editors.fixture.js'
import { encodeBase64, encodeSyncMessage } from './wire.js'

type Json = Record<string, unknown>

/** A raw protocol client, as an attacker writes one: each request resolves with its reply. */
const raw = async (url: string, user: string): Promise<(message: Json) => Promise<Json>> => {
  const client = await openProtocolClient(`${url}?user=${user}`)
  cleanups.push(() => client.close())
  return (message) => client.request(message)
}

const updateOf = (edit: (doc: Y.Doc) => void): Uint8Array => {
  const doc = new Y.Doc()
  edit(doc)
  return Y.encodeStateAsUpdate(doc)
}

describe('who may read and write a document', () => {
  it('a reader gets the text and its updates but cannot change it; a stranger gets nothing', async () => {
    const { url, docs } = await node({
      yjs: {
        authorize: ({ user }) => (user.id === 'ada' ? 'write' : user.id === 'viewer' ? 'read' : 'none'),
      },
    })
    const ada = await editor(url, 'ada')
    ada.text.insert(0, 'by ada')
    const viewer = await editor(url, 'viewer')
    expect(viewer.text.toString()).toBe('by ada')
    expect(viewer.provider.writable).toBe(false)
    ada.text.insert(6, ', live')
    await converged([ada, viewer], 'by ada, live')
    // The viewer's local edit stays local; its direct update call is refused.
    viewer.text.insert(0, 'HACKED ')
    const call = await raw(url, 'viewer')
    expect(
      await call({
        type: 'call',
        method: 'yjs.update',
        data: {
          doc: 'notes',
          message: encodeBase64(
            encodeSyncMessage(
              'update',
              updateOf((d) => d.getText('text').insert(0, 'x')),
            ),
          ),
        },
      }),
    ).toMatchObject({ type: 'error', code: 'FORBIDDEN' })
    // Nobody publishes to a document's topic directly, writer or not.
    expect(await call({ type: 'publish', topic: 'doc:notes', data: { u: 'AAA=' } })).toMatchObject({
      code: 'FORBIDDEN',
    })
    const fresh = await editor(url, 'ada')
    expect(fresh.text.toString()).toBe('by ada, live')
    expect(ada.text.toString()).toBe('by ada, live')
    // A stranger can neither sync nor subscribe.
    const stranger = await raw(url, 'mallory')
    const step1 = encodeBase64(encodeSyncMessage('step1', Y.encodeStateVector(new Y.Doc())))
    expect(
      await stranger({ type: 'call', method: 'yjs.sync', data: { doc: 'notes', message: step1 } }),
    ).toMatchObject({
      code: 'FORBIDDEN',
    })
    expect(await stranger({ type: 'subscribe', topic: 'doc:notes' })).toMatchObject({ code: 'FORBIDDEN' })
    expect(docs.stats.refused).toBeGreaterThanOrEqual(1)
  })
})

describe('bad input', () => {
  it('refuses malformed, oversized and too frequent updates, and the document stays whole', async () => {
    const { url, logged } = await node({
      yjs: { maxUpdateBytes: 4096, maxDocumentBytes: 32 * 1024, maxUpdatesPerSecond: 20 },
    })
    const ada = await editor(url, 'ada')
    ada.text.insert(0, 'intact')
    const call = await raw(url, 'mallory')
    const update = (message: unknown): Promise<Json> =>
      call({ type: 'call', method: 'yjs.update', data: { doc: 'notes', message } })
    const garbage = new Uint8Array(64).map((_, i) => (i * 37) % 256)
    const cases: [unknown, string][] = [
      ['not base64!', 'BAD_REQUEST'],
      [encodeBase64(garbage), 'BAD_REQUEST'],
      [encodeBase64(encodeSyncMessage('update', garbage)), 'BAD_REQUEST'],
      [encodeBase64(encodeSyncMessage('step1', Y.encodeStateVector(new Y.Doc()))), 'BAD_REQUEST'],
      [42, 'BAD_REQUEST'],
      [
        encodeBase64(
          encodeSyncMessage(
            'update',
            updateOf((d) => d.getText('text').insert(0, 'x'.repeat(8000))),
          ),
        ),
        'TOO_LARGE',
      ],
    ]
    for (const [message, code] of cases) expect(await update(message)).toMatchObject({ type: 'error', code })
    expect(
      await call({ type: 'call', method: 'yjs.update', data: { doc: '../../etc', message: 'AAA=' } }),
    ).toMatchObject({
      code: 'BAD_REQUEST',
    })
    // Up to the document's size, then refused; what it held stays.
    let tooLarge: Json | undefined
    for (let i = 0; i < 15 && !tooLarge; i++) {
      const reply = await update(
        encodeBase64(
          encodeSyncMessage(
            'update',
            updateOf((d) => d.getText(`big${i}`).insert(0, 'y'.repeat(3500))),
          ),
        ),
      )
      if (reply.type === 'error') tooLarge = reply
    }
    expect(tooLarge).toMatchObject({ code: 'TOO_LARGE' })
    // Many small valid updates: past the document's rate, refused, none of them harmful.
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        update(
          encodeBase64(
            encodeSyncMessage(
              'update',
              updateOf((d) => d.getText('other').insert(0, `${i}`)),
            ),
          ),
        ),
      ),
    )
    expect(replies.filter((r) => r.code === 'RATE_LIMITED').length).toBeGreaterThan(0)
    const late = await editor(url, 'bob')
    expect(late.text.toString()).toBe('intact')
    expect(ada.text.toString()).toBe('intact')
    expect(logged).toEqual([])
  })

  it('takes an update and an awareness update of exactly the limit, and refuses one byte more', async () => {
    // One client id for both (its varint length is part of the update's).
    const ofLength = (k: number): Uint8Array =>
      updateOf((d) => {
        d.clientID = 4242
        d.getText('text').insert(0, 'x'.repeat(k))
      })
    const awarenessOf = (k: number): Uint8Array =>
      new Uint8Array([1, ...varUint(4242), 0, ...jsonString({ name: 'y'.repeat(k) })])
    expect(ofLength(1001).length).toBe(ofLength(1000).length + 1)
    expect(awarenessOf(1001).length).toBe(awarenessOf(1000).length + 1)
    const { url } = await node({
      yjs: { maxUpdateBytes: ofLength(1000).length, maxAwarenessBytes: awarenessOf(1000).length },
    })
    const call = await raw(url, 'ada')
    expect(await call({ type: 'subscribe', topic: 'doc:notes' })).toMatchObject({ type: 'ack' })
    const update = (bytes: Uint8Array): Promise<Json> =>
      call({
        type: 'call',
        method: 'yjs.update',
        data: { doc: 'notes', message: encodeBase64(encodeSyncMessage('update', bytes)) },
      })
    const awareness = (bytes: Uint8Array): Promise<Json> =>
      call({ type: 'call', method: 'yjs.awareness', data: { doc: 'notes', update: encodeBase64(bytes) } })
    expect(await update(ofLength(1000))).toMatchObject({ type: 'result', data: { offset: 1 } })
    expect(await update(ofLength(1001))).toMatchObject({ type: 'error', code: 'TOO_LARGE' })
    expect(await awareness(awarenessOf(1000))).toMatchObject({ type: 'result', data: null })
    expect(await awareness(awarenessOf(1001))).toMatchObject({ type: 'error', code: 'TOO_LARGE' })
  })

  it('keeps awareness states to the connection that made them', async () => {
    const { url } = await node()
    const ada = await editor(url, 'ada')
    ada.provider.awareness!.setLocalStateField('name', 'Ada')
    const bob = await editor(url, 'bob')
    await waitFor(() => bob.provider.awareness!.getStates().get(ada.doc.clientID)?.name === 'Ada')
    // Mallory forges an update for Ada's client id.
    const call = await raw(url, 'mallory')
    expect(await call({ type: 'subscribe', topic: 'doc:notes' })).toMatchObject({ type: 'ack' })
    const forged = new Uint8Array([1, ...varUint(ada.doc.clientID), 99, ...jsonString({ name: 'Mallory' })])
    expect(
      await call({
        type: 'call',
        method: 'yjs.awareness',
        data: { doc: 'notes', update: encodeBase64(forged) },
      }),
    ).toMatchObject({ code: 'FORBIDDEN' })
    expect(
      await call({ type: 'call', method: 'yjs.awareness', data: { doc: 'notes', update: 'AQ==' } }),
    ).toMatchObject({ code: 'BAD_REQUEST' })
    expect(bob.provider.awareness!.getStates().get(ada.doc.clientID)?.name).toBe('Ada')
  })

  it('leaves no document, topic, timer or socket behind after editors and attackers come and go', async () => {
    const { url, docs, hub, server } = await node({ yjs: { idleMs: 100 } })
    // The first editor warms everything up (the yjs and hub code, the engine): then the baseline.
    const warm = await openEditor(url, 'warm', 'leaks')
    await warm.provider.whenSynced()
    await warm.close()
    await waitFor(() => docs.stats.loaded === 0 && hub.stats.topics === 0, 3_000)
    const check = await leakCheck({ emitters: [server.node] })
    for (let round = 0; round < 10; round++) {
      const editors = await Promise.all(
        ['ada', 'bob', 'cy'].map((user) => openEditor(url, user, `leaks-${round}`)),
      )
      await Promise.all(editors.map((e) => e.provider.whenSynced()))
      editors[0]!.text.insert(0, `round ${round}`)
      editors[1]!.provider.awareness!.setLocalStateField('cursor', round)
      await converged(editors)
      const attacker = await openProtocolClient(`${url}?user=mallory`)
      await attacker.request({ type: 'subscribe', topic: `doc:leaks-${round}` })
      await attacker.request({
        type: 'call',
        method: 'yjs.update',
        data: { doc: `leaks-${round}`, message: 'AAAA' },
      })
      await attacker.request({
        type: 'call',
        method: 'yjs.awareness',
        data: { doc: `leaks-${round}`, update: 'AQ==' },
      })
      attacker.close()
      await Promise.all(editors.map((e) => e.close()))
    }
    await waitFor(() => docs.stats.loaded === 0 && hub.stats.topics === 0 && hub.stats.peers === 0, 5_000)
    expect(docs.stats.snapshots).toBe(10) // each edited document saved once, when it went idle
    await check.assertClean()
  })
})

/** lib0's variable-length unsigned integer. */
const varUint = (value: number): number[] => {
  const bytes: number[] = []
  while (value > 127) {
    bytes.push((value & 127) | 128)
    value = Math.floor(value / 128)
  }
  bytes.push(value)
  return bytes
}

const jsonString = (value: unknown): number[] => {
  const bytes = [...new TextEncoder().encode(JSON.stringify(value))]
  return [...varUint(bytes.length), ...bytes]
}
