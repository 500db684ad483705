import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@flumen/client'
import { createClient } from '@flumen/client'
import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { yjsProvider } from '@flumen/yjs/provider'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import { buildDemo } from './app.js'
import { loadConfig } from './config.js'

let server: FlumenServer
let dataDir: string
const cleanups: (() => unknown)[] = []

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'rooms-notes-'))
  const demo = buildDemo(loadConfig({ DATA_DIR: dataDir, JWT_SECRET: 'x'.repeat(40) }))
  server = await serve(demo.app, { port: 0, hostname: '127.0.0.1', plugins: demo.plugins })
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await server.close({ timeoutMs: 200 })
  await rm(dataDir, { recursive: true, force: true })
})

const notesOf = async (
  name: string,
  room: string,
): Promise<{ client: Client; text: Y.Text; errors: Error[] }> => {
  const res = await fetch(`${server.url}api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  const { token } = (await res.json()) as { token: string }
  const client = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, token, keepAlive: false })
  const doc = new Y.Doc()
  const provider = yjsProvider(client, `room-${room}`, doc)
  const errors: Error[] = []
  provider.on('error', (err) => errors.push(err))
  cleanups.push(async () => {
    await provider.destroy()
    await client.close()
  })
  await provider.whenSynced()
  return { client, text: doc.getText('notes'), errors }
}

describe('shared notes of a room', () => {
  it('two people edit them at once and converge; other documents are refused', async () => {
    const lea = await notesOf('lea', 'lobby')
    const max = await notesOf('max', 'lobby')
    lea.text.insert(0, 'Lea. ')
    max.text.insert(0, 'Max. ')
    await vi.waitFor(
      () => {
        expect(lea.text.toString()).toHaveLength(10)
        expect(max.text.toString()).toBe(lea.text.toString())
      },
      { timeout: 5_000 },
    )
    expect([...lea.errors, ...max.errors]).toEqual([])
    await expect(lea.client.call('yjs.sync', { doc: 'secret-plans', message: 'AAA=' })).rejects.toMatchObject(
      { code: 'FORBIDDEN' },
    )
  })
})
