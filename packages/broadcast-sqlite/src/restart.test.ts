import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHub } from '@flumen/broadcast'
import type { Client } from '@flumen/client'
import { createClient } from '@flumen/client/node'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { waitFor } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { sqliteEngine } from './index.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const startNode = async (
  file: string,
  port = 0,
): Promise<{ server: FlumenServer; publish(n: number): Promise<number> }> => {
  const hub = createHub({ engine: sqliteEngine({ file }), logError: () => {} })
  const app = createApp().get('/ws', hub.websocket())
  const server = await serve(app, { port, hostname: '127.0.0.1' })
  return { server, publish: (n) => hub.publish('room:1', n) }
}

describe('a hub on sqliteEngine, restarted', () => {
  it('lets the real client recover exactly what it missed while the server was down: no reset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flumen-sqlite-restart-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'flumen.db')
    let node = await startNode(file)
    const port = node.server.port
    cleanups.push(() => node.server.close({ timeoutMs: 200 }))
    const client: Client = createClient({
      url: `ws://127.0.0.1:${port}/ws`,
      retryDelayMs: () => 50,
      keepAlive: false,
    })
    cleanups.push(() => client.close())
    const received: number[] = []
    const resets: unknown[] = []
    client.on('reset', (event) => resets.push(event))
    await client.subscribe<number>('room:1', (n) => received.push(n)).ready
    for (let n = 1; n <= 10; n++) await node.publish(n)
    await waitFor(() => received.length === 10)

    await node.server.close({ timeoutMs: 200 })
    await waitFor(() => client.state === 'reconnecting')
    node = await startNode(file, port)
    // Published by the new process before the client is back: the gap it must recover.
    for (let n = 11; n <= 20; n++) await node.publish(n)
    await waitFor(() => received.length === 20, 10_000, `got ${received.length}`)
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(resets).toEqual([])
  })
})
