// The app's own API tests: what a copy of Flumen Rooms checks about itself, with published packages
// only (npm create flumen ships this file; the monorepo's deeper tests stay behind).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@flumen/client'
import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildDemo } from './app.js'
import { loadConfig } from './config.js'

let server: FlumenServer
let dataDir: string
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'rooms-app-'))
  const demo = buildDemo(
    loadConfig({ DATA_DIR: dataDir, JWT_SECRET: 'a'.repeat(40), UPLOAD_MAX_BYTES: '100000' }),
  )
  server = await serve(demo.app, { port: 0, hostname: '127.0.0.1', plugins: demo.plugins })
})
afterAll(async () => {
  await server.close({ timeoutMs: 500 })
  await rm(dataDir, { recursive: true, force: true })
})

const signIn = async (name: string): Promise<{ token: string; cookie: string; user: { id: string } }> => {
  const res = await fetch(`${server.url}api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  expect(res.status).toBe(200)
  const body = (await res.json()) as { token: string; user: { id: string } }
  return { ...body, cookie: res.headers.get('set-cookie')!.split(';')[0]! }
}

describe('Flumen Rooms', () => {
  it('answers /healthz and serves its page', async () => {
    expect(await (await fetch(`${server.url}healthz`)).json()).toEqual({ status: 'ok' })
    expect((await fetch(server.url)).headers.get('content-type')).toMatch(/^text\/html/)
    expect((await fetch(`${server.url}app.js`)).status).toBe(200)
  })

  it('signs in, chats over the WebSocket with the server naming the sender, and refuses the rest', async () => {
    const alice = await signIn('alice')
    const bob = await signIn('bob')
    const url = `ws://127.0.0.1:${server.port}/ws`
    const a = createClient({ url, token: alice.token })
    const b = createClient({ url, token: bob.token })
    try {
      const received: { from: { name: string }; text: string }[] = []
      await b.subscribe<(typeof received)[number]>('room:lobby', (message) => received.push(message)).ready
      await a.publish('room:lobby', { text: 'hello', from: { name: 'bob' } })
      await expect.poll(() => received.map((m) => [m.from.name, m.text])).toEqual([['alice', 'hello']])
      await expect(a.publish('dashboard', { text: 'forged' })).rejects.toMatchObject({ code: 'FORBIDDEN' })
      expect((await fetch(`${server.url}api/me`)).status).toBe(401)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('shares a file in a room and serves it back; sign-out revokes the session', async () => {
    const { cookie } = await signIn('carol')
    const form = new FormData()
    form.append('file', new Blob(['a small file']), 'notes.txt')
    const upload = await fetch(`${server.url}api/uploads?room=lobby`, {
      method: 'POST',
      headers: { cookie, origin: server.url.replace(/\/$/, '') },
      body: form,
    })
    expect(upload.status).toBe(201)
    const { url } = (await upload.json()) as { url: string }
    const file = await fetch(new URL(url, server.url), { headers: { cookie } })
    expect(await file.text()).toBe('a small file')
    await fetch(`${server.url}api/logout`, {
      method: 'POST',
      headers: { cookie, origin: server.url.replace(/\/$/, '') },
    })
    expect((await fetch(`${server.url}api/me`, { headers: { cookie } })).status).toBe(401)
  })

  it('keeps rooms and shared files across a restart (DATA_DIR/flumen.db)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rooms-restart-'))
    const start = (): Promise<FlumenServer> => {
      const demo = buildDemo(
        loadConfig({ DATA_DIR: dir, JWT_SECRET: 'a'.repeat(40), UPLOAD_MAX_BYTES: '100000' }),
      )
      return serve(demo.app, { port: 0, hostname: '127.0.0.1', plugins: demo.plugins })
    }
    let first: FlumenServer | undefined
    let second: FlumenServer | undefined
    try {
      first = await start()
      const origin = first.url.replace(/\/$/, '')
      const res = await fetch(`${first.url}api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"dora"}',
      })
      const cookie = res.headers.get('set-cookie')!.split(';')[0]!
      const headers = { cookie, origin, 'content-type': 'application/json' }
      for (const text of ['before the restart', 'still here'])
        await fetch(`${first.url}api/rooms/ops/messages`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ text }),
        })
      const form = new FormData()
      form.append('file', new Blob(['kept on disk']), 'kept.txt')
      await fetch(`${first.url}api/uploads?room=ops`, {
        method: 'POST',
        headers: { cookie, origin },
        body: form,
      })
      const before = await (await fetch(`${first.url}api/rooms/ops/messages`, { headers })).json()
      await first.close({ timeoutMs: 500 })

      second = await start()
      const after = (await (await fetch(`${second.url}api/rooms/ops/messages`, { headers })).json()) as {
        epoch: string
        offset: number
        messages: { data: { text?: string; file?: { url: string } } }[]
      }
      // The same epoch and offsets: a client resuming from before the restart recovers, no reset.
      expect(after).toEqual(before)
      expect(after.messages.map((m) => m.data.text ?? 'file')).toEqual([
        'before the restart',
        'still here',
        'file',
      ])
      const file = await fetch(new URL(after.messages[2]!.data.file!.url, second.url), {
        headers: { cookie },
      })
      expect(await file.text()).toBe('kept on disk')
    } finally {
      await first?.close({ timeoutMs: 500 })
      await second?.close({ timeoutMs: 500 })
      await rm(dir, { recursive: true, force: true })
    }
  })
})
