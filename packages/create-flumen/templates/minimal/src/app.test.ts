import { createClient } from '@flumen/client'
import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { app, hub } from './app.js'

let server: FlumenServer
beforeAll(async () => {
  server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
})
afterAll(() => server.close({ timeoutMs: 500 }))

describe('the app', () => {
  it('answers /healthz', async () => {
    const res = await fetch(`${server.url}healthz`)
    expect(await res.json()).toEqual({ status: 'ok' })
  })

  it('delivers a message published over the WebSocket, and an upload, to a subscriber', async () => {
    const url = `ws://127.0.0.1:${server.port}/ws`
    const alice = createClient({ url })
    const bob = createClient({ url })
    try {
      const received: unknown[] = []
      await bob.subscribe('chat:lobby', (data) => received.push(data)).ready
      await alice.publish('chat:lobby', { text: 'hi' })
      const form = new FormData()
      form.append('file', new Blob(['hello']), 'hello.txt')
      expect((await fetch(`${server.url}upload`, { method: 'POST', body: form })).status).toBe(201)
      await expect
        .poll(() => received)
        .toEqual([{ text: 'hi' }, { type: 'file', name: 'hello.txt', size: 5 }])
      await expect(alice.publish('secret', 1)).rejects.toMatchObject({ code: 'FORBIDDEN' })
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })
})
