import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resumableUpload } from '@flumen/client'
import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { leakCheck, openSse } from '@flumen/testing'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { buildDemo } from './app.js'
import { loadConfig } from './config.js'

type Json = Record<string, unknown>

let server: FlumenServer
let dataDir: string
let base: string
const sockets: WebSocket[] = []
const streams: { close(): void }[] = []

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'rooms-test-'))
  const config = loadConfig({ DATA_DIR: dataDir, UPLOAD_MAX_BYTES: '100000', JWT_SECRET: 'x'.repeat(40) })
  const demo = buildDemo(config)
  server = await serve(demo.app, { port: 0, hostname: '127.0.0.1', plugins: demo.plugins })
  base = server.url.replace(/\/$/, '')
})
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  for (const stream of streams.splice(0)) stream.close()
  await server.close({ timeoutMs: 200 })
  await rm(dataDir, { recursive: true, force: true })
})

const signIn = async (
  name: string,
): Promise<{ token: string; cookie: string; user: { id: string; name: string } }> => {
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  expect(res.status).toBe(200)
  const cookie = res.headers.get('set-cookie')!
  expect(cookie).toMatch(/HttpOnly/i)
  const body = (await res.json()) as { token: string; user: { id: string; name: string } }
  return { ...body, cookie: cookie.split(';')[0]! }
}

const openWs = (headers: Record<string, string>, query = '', protocols = ['flumen.v1']): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws${query}`, protocols, { headers })
    sockets.push(socket)
    // Every message is kept: several can arrive in one chunk, between two awaits of a reader.
    const received: Json[] = []
    inboxes.set(socket, received)
    socket.on('message', (data: Buffer) => {
      received.push(JSON.parse(data.toString()) as Json)
      socket.emit('flumen-test-message')
    })
    socket.once('open', () => resolve(socket))
    socket.once('unexpected-response', (req, res) => {
      req.destroy()
      reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode }))
    })
    socket.once('error', () => {})
  })

const statusOf = async (promise: Promise<unknown>): Promise<number> => {
  try {
    await promise
    return 101
  } catch (err) {
    return (err as { status: number }).status
  }
}

const inboxes = new WeakMap<WebSocket, Json[]>()

/** The first received message (from the start of the connection) that matches. */
const waitFor = async (socket: WebSocket, match: (m: Json) => boolean): Promise<Json> => {
  const received = inboxes.get(socket)!
  for (;;) {
    const found = received.find(match)
    if (found) return found
    await once(socket, 'flumen-test-message')
  }
}

const request = async (socket: WebSocket, message: Json): Promise<Json> => {
  const id = Math.floor(Math.random() * 1e9)
  socket.send(JSON.stringify({ ...message, id }))
  return waitFor(socket, (reply) => reply.id === id)
}

const nextMessage = (socket: WebSocket, match: (m: Json) => boolean): Promise<Json> =>
  waitFor(socket, (message) => message.type === 'message' && match(message))

const multipart = (name: string, content: Buffer): { body: Buffer; type: string } => {
  const boundary = 'roomsTestBoundary'
  return {
    type: `multipart/form-data; boundary=${boundary}`,
    body: Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      content,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
  }
}

describe('sessions', () => {
  it('POST /api/session signs in valid names and refuses the rest with 400', async () => {
    const { token, user } = await signIn('alice_1')
    expect(user).toEqual({ id: expect.stringMatching(/^[\w-]{16}$/), name: 'alice_1' })
    expect(token.split('.')).toHaveLength(3)
    for (const body of [
      '{"name":""}',
      `{"name":"${'a'.repeat(33)}"}`,
      '{"name":"bad name"}',
      '{"name":"<script>"}',
      '{"name":5}',
      '{}',
      'not json',
      '[]',
    ]) {
      const res = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(res.status).toBe(400)
      expect(((await res.json()) as Json).error).toMatchObject({ code: 'BAD_REQUEST' })
    }
    const huge = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"name":"${'a'.repeat(10_000)}"}`,
    })
    expect(huge.status).toBe(413)
  })

  it('sign-out revokes the session: a cookie copied before no longer works, nor gets a token', async () => {
    const { cookie } = await signIn('mallory')
    expect((await fetch(`${base}/api/me`, { headers: { cookie } })).status).toBe(200)
    const logout = await fetch(`${base}/api/logout`, { method: 'POST', headers: { cookie, origin: base } })
    expect(logout.status).toBe(204)
    expect((await fetch(`${base}/api/me`, { headers: { cookie } })).status).toBe(401)
    expect((await fetch(`${base}/api/token`, { headers: { cookie } })).status).toBe(401)
    expect(await statusOf(openWs({ cookie }))).toBe(401)
  })

  it('rate-limits write routes per user with a JSON 429: the HTTP chat route is no way around the socket limit', async () => {
    const { token } = await signIn('spammer')
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const statuses: number[] = []
    for (let i = 0; i < 65; i++) {
      const res = await fetch(`${base}/api/rooms/spam/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ text: `m${i}` }),
      })
      statuses.push(res.status)
      if (res.status === 429) {
        expect(((await res.json()) as Json).error).toMatchObject({ code: 'RATE_LIMITED' })
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
      } else await res.body?.cancel()
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(60)
    expect(statuses.filter((status) => status === 429)).toHaveLength(5)
    // Another user is not affected.
    const other = await signIn('quiet')
    const ok = await fetch(`${base}/api/rooms/spam/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello' }),
    })
    expect(ok.status).toBe(200)
  })

  it('GET /api/session answers 200 signed in or not: the user (or null) and the upload limit', async () => {
    const anonymous = await fetch(`${base}/api/session`)
    expect(anonymous.status).toBe(200)
    const limits = { uploadMaxBytes: expect.any(Number) }
    expect(await anonymous.json()).toEqual({ user: null, limits })
    const { cookie, user } = await signIn('erin')
    expect(await (await fetch(`${base}/api/session`, { headers: { cookie } })).json()).toEqual({
      user,
      limits,
    })
    // A forged (or revoked, or expired) cookie is nobody: the page offers to sign in.
    const forged = await fetch(`${base}/api/session`, { headers: { cookie: 'rooms_session=forged' } })
    expect(await forged.json()).toEqual({ user: null, limits })
  })

  it('GET /api/me answers the user by token or cookie, else 401', async () => {
    const { token, cookie, user } = await signIn('bob')
    expect(
      await (await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } })).json(),
    ).toEqual(user)
    expect(await (await fetch(`${base}/api/me`, { headers: { cookie } })).json()).toEqual(user)
    const anonymous = await fetch(`${base}/api/me`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(
      (await fetch(`${base}/api/me`, { headers: { authorization: 'Bearer nope.nope.nope' } })).status,
    ).toBe(401)
  })
})

describe('/ws and /sse', () => {
  it('authenticates by header, cookie, bearer subprotocol or access_token; 401 without, 403 from a foreign Origin', async () => {
    const { token, cookie } = await signIn('carol')
    expect((await openWs({ authorization: `Bearer ${token}` })).protocol).toBe('flumen.v1')
    expect((await openWs({ cookie })).protocol).toBe('flumen.v1')
    expect((await openWs({}, '', ['flumen.v1', `bearer.${token}`])).protocol).toBe('flumen.v1')
    expect((await openWs({}, `?access_token=${token}`)).protocol).toBe('flumen.v1')
    expect(await statusOf(openWs({}))).toBe(401)
    expect(await statusOf(openWs({ cookie, origin: 'https://evil.example' }))).toBe(403)
    expect(await statusOf(openWs({ authorization: `Bearer ${token}`, origin: 'https://evil.example' }))).toBe(
      403,
    )
    expect((await openWs({ cookie, origin: base })).readyState).toBe(WebSocket.OPEN)
  })

  it('applies the topic rules: rooms written as the server names the sender, typing only volatile, directory and dashboard read-only', async () => {
    const alice = await signIn('alice')
    const bob = await signIn('bob')
    const socket = await openWs({ cookie: alice.cookie })
    const ok = { type: 'ack' }
    expect(await request(socket, { type: 'subscribe', topic: 'room:lobby' })).toMatchObject(ok)
    const bobSocket = await openWs({ cookie: bob.cookie })
    await request(bobSocket, { type: 'subscribe', topic: 'room:lobby' })
    // A client publishes to a room, but cannot claim to be someone else: the server names the sender.
    const forged = { type: 'chat', id: 'x', from: { id: bob.user.id, name: 'bob' }, text: 'I am bob', at: 1 }
    expect(await request(socket, { type: 'publish', topic: 'room:lobby', data: forged })).toMatchObject(ok)
    expect(await nextMessage(bobSocket, (m) => m.topic === 'room:lobby')).toMatchObject({
      data: { type: 'chat', from: { id: alice.user.id, name: 'alice' }, text: 'I am bob' },
    })
    expect(
      await request(socket, { type: 'publish', topic: 'room:lobby', data: { text: 'x'.repeat(2001) } }),
    ).toMatchObject({ code: 'TOO_LARGE' })
    // Typing: volatile, with the sender the session names; never stored, never as a chat line.
    const forgedTyping = { typing: true, from: { id: bob.user.id, name: 'bob' } }
    expect(
      await request(socket, { type: 'publish', topic: 'room:lobby', data: forgedTyping, volatile: true }),
    ).toEqual({ type: 'ack', id: expect.any(Number) })
    expect(await nextMessage(bobSocket, (m) => (m.data as Json).type === 'typing')).toEqual({
      type: 'message',
      topic: 'room:lobby',
      data: { type: 'typing', from: { id: alice.user.id, name: 'alice' }, typing: true },
      volatile: true,
    })
    expect(
      await request(socket, { type: 'publish', topic: 'room:lobby', data: { typing: true } }),
    ).toMatchObject({ code: 'BAD_REQUEST', message: 'Send typing as a volatile publish' })
    expect(
      await request(socket, { type: 'publish', topic: 'room:lobby', data: { text: 'hi' }, volatile: true }),
    ).toMatchObject({ code: 'BAD_REQUEST' })
    expect(await request(socket, { type: 'subscribe', topic: 'directory' })).toMatchObject(ok)
    expect(await request(socket, { type: 'publish', topic: 'directory', data: 1 })).toMatchObject({
      code: 'FORBIDDEN',
    })
    expect(await request(socket, { type: 'subscribe', topic: `user:${alice.user.id}` })).toMatchObject({
      code: 'FORBIDDEN',
    })
    expect(await request(socket, { type: 'subscribe', topic: 'dashboard' })).toMatchObject(ok)
    expect(await request(socket, { type: 'publish', topic: 'dashboard', data: 1 })).toMatchObject({
      code: 'FORBIDDEN',
    })
    expect(await request(socket, { type: 'subscribe', topic: 'other:x' })).toMatchObject({
      code: 'FORBIDDEN',
    })
  })

  it('streams the same topics over SSE, with Last-Event-ID resume and 401/403', async () => {
    const { cookie, token } = await signIn('dave')
    const stream = await openSse(`${base}/sse?topic=room:lobby`, { cookie })
    streams.push(stream)
    expect(stream.response.statusCode).toBe(200)
    await fetch(`${base}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: base },
      body: '{"text":"over sse"}',
    })
    const isChat = (e: { data: string }): boolean => (JSON.parse(e.data) as Json).type === 'message'
    const first = await stream.next(isChat)
    expect((JSON.parse(first.data) as { data: Json }).data).toMatchObject({
      type: 'chat',
      text: 'over sse',
      from: { name: 'dave' },
    })
    stream.close()
    await fetch(`${base}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"text":"while away"}',
    })
    const resumed = await openSse(`${base}/sse?topic=room:lobby`, { cookie, 'last-event-id': first.id! })
    streams.push(resumed)
    expect((JSON.parse((await resumed.next(isChat)).data) as { data: Json }).data).toMatchObject({
      text: 'while away',
    })
    expect((await openSse(`${base}/sse?topic=room:lobby`)).response.statusCode).toBe(401)
    expect(
      (await openSse(`${base}/sse?topic=room:lobby`, { cookie, origin: 'https://evil.example' })).response
        .statusCode,
    ).toBe(403)
    expect((await openSse(`${base}/sse?topic=secret`, { cookie })).response.statusCode).toBe(403)
  })
})

describe('rooms', () => {
  it('POST /api/rooms/:room/messages publishes { from, text } to HTTP, WS and SSE clients', async () => {
    const alice = await signIn('alice')
    const bob = await signIn('bob')
    const socket = await openWs({ cookie: bob.cookie })
    await request(socket, { type: 'subscribe', topic: 'room:team' })
    const arriving = nextMessage(socket, (m) => m.topic === 'room:team')
    const res = await fetch(`${base}/api/rooms/team/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: '  hello team  ' }),
    })
    expect(res.status).toBe(200)
    const { offset } = (await res.json()) as { offset: number }
    const delivered = await arriving
    expect(delivered).toMatchObject({
      offset,
      data: { type: 'chat', text: 'hello team', from: { id: alice.user.id, name: 'alice' } },
    })
    // The same over the WebSocket: a retry (the same key) is stored once, and the HTTP retry too.
    const aliceWs = await openWs({ cookie: alice.cookie })
    const publish = { type: 'publish', topic: 'room:team', data: { text: 'via ws', id: 'm1' }, key: 'm1' }
    const first = (await request(aliceWs, publish)) as { offset: number }
    const retry = (await request(aliceWs, publish)) as { offset: number }
    expect(retry.offset).toBe(first.offset)
    const post = (): Promise<Response> =>
      fetch(`${base}/api/rooms/team/messages`, {
        method: 'POST',
        headers: { cookie: alice.cookie, 'content-type': 'application/json', origin: base },
        body: JSON.stringify({ text: 'posted twice', id: 'h1' }),
      })
    const [once, twice] = [await (await post()).json(), await (await post()).json()]
    expect(twice).toEqual(once)
  })

  it('GET /api/rooms/:room/messages returns the recent messages for a resync', async () => {
    const { token } = await signIn('jo')
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    for (const text of ['one', 'two', 'three'])
      await fetch(`${base}/api/rooms/sync/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ text }),
      })
    const res = await fetch(`${base}/api/rooms/sync/messages`, { headers })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { offset: number; messages: { offset: number; data: Json }[] }
    expect(body.offset).toBe(3)
    expect(body.messages.map((m) => m.data.text)).toEqual(['one', 'two', 'three'])
    expect((await fetch(`${base}/api/rooms/empty/messages`, { headers })).status).toBe(200)
    expect((await fetch(`${base}/api/rooms/bad%20room/messages`, { headers })).status).toBe(400)
    expect((await fetch(`${base}/api/rooms/sync/messages`)).status).toBe(401)
  })

  it('lists rooms in the directory with their first message, and who is in them every few seconds', async () => {
    const { cookie, token } = await signIn('kim')
    const socket = await openWs({ cookie })
    await request(socket, { type: 'subscribe', topic: 'directory' })
    await request(socket, { type: 'subscribe', topic: 'room:listed' })
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const post = (): Promise<Response> =>
      fetch(`${base}/api/rooms/listed/messages`, { method: 'POST', headers, body: '{"text":"first"}' })
    expect((await post()).status).toBe(200)
    expect(await nextMessage(socket, (m) => m.topic === 'directory')).toMatchObject({
      data: { type: 'room', name: 'listed' },
      offset: expect.any(Number),
    })
    const occupancy = await nextMessage(
      socket,
      (m) => (m.data as Json).type === 'occupancy' && (m.data as { rooms: Json }).rooms.listed === 1,
    )
    expect(occupancy).toMatchObject({ volatile: true })
    await post() // a second message lists nothing more
    const res = await fetch(`${base}/api/rooms`, { headers })
    const { rooms } = (await res.json()) as { rooms: { name: string; users: number }[] }
    expect(rooms.filter((room) => room.name === 'listed')).toEqual([{ name: 'listed', users: 1 }])
    expect(
      inboxes
        .get(socket)!
        .filter((m) => m.topic === 'directory' && (m.data as Json | undefined)?.type === 'room'),
    ).toHaveLength(1)
    expect((await fetch(`${base}/api/rooms`)).status).toBe(401)
  })

  it('refuses bad messages and rooms', async () => {
    const { cookie, token } = await signIn('erin')
    const post = (room: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/api/rooms/${room}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body,
      })
    expect((await post('team', '{"text":""}')).status).toBe(400)
    expect((await post('team', '{"text":"   "}')).status).toBe(400)
    expect((await post('team', '{"text":5}')).status).toBe(400)
    expect((await post('team', 'nope')).status).toBe(400)
    expect((await post('team', JSON.stringify({ text: 'x'.repeat(2001) }))).status).toBe(413)
    expect((await post('bad%20room', '{"text":"hi"}')).status).toBe(400)
    expect((await post(`${'r'.repeat(33)}`, '{"text":"hi"}')).status).toBe(400)
    expect(
      (await fetch(`${base}/api/rooms/team/messages`, { method: 'POST', body: '{"text":"x"}' })).status,
    ).toBe(401)
    // Cookie from another site: CSRF protection.
    expect(
      (await post('team', '{"text":"hi"}', { authorization: '', cookie, origin: 'https://evil.example' }))
        .status,
    ).toBe(403)
  })
})

describe('uploads and files', () => {
  it('stores a file (201), shows the room its progress and who sends it, announces it and serves it', async () => {
    const { cookie } = await signIn('frank')
    const watcher = await signIn('gina')
    const socket = await openWs({ cookie: watcher.cookie })
    await request(socket, { type: 'subscribe', topic: 'room:share' })
    const content = randomBytes(60_000)
    const { body, type } = multipart('report.bin', content)
    const announced = nextMessage(socket, (m) => m.topic === 'room:share' && (m.data as Json).type === 'file')
    const res = await fetch(`${base}/api/uploads?room=share`, {
      method: 'POST',
      headers: { cookie, origin: base, 'content-type': type, 'upload-id': 'up-1' },
      body: new Uint8Array(body),
    })
    expect(res.status).toBe(201)
    const record = (await res.json()) as { id: string; url: string; size: number; name: string }
    expect(record).toMatchObject({ name: 'report.bin', size: 60_000, url: `/files/${record.id}` })
    expect(await announced).toMatchObject({
      data: { type: 'file', file: { id: record.id, from: { name: 'frank' } } },
    })
    expect(
      await nextMessage(
        socket,
        (m) => m.topic === 'room:share' && (m.data as Json).type === 'upload-progress',
      ),
    ).toMatchObject({ volatile: true, data: { uploadId: 'up-1', from: { name: 'frank' } } })
    expect(
      await nextMessage(socket, (m) => m.topic === 'room:share' && (m.data as Json).type === 'upload-done'),
    ).toMatchObject({ data: { uploadId: 'up-1', from: { name: 'frank' } }, offset: expect.any(Number) })
    const download = await fetch(`${base}${record.url}`, { headers: { cookie } })
    expect(download.status).toBe(200)
    expect(download.headers.get('content-disposition')).toMatch(/^attachment/)
    expect(download.headers.get('x-content-type-options')).toBe('nosniff')
    expect(Buffer.from(await download.arrayBuffer())).toEqual(content)
    expect((await fetch(`${base}${record.url}`)).status).toBe(401)
    expect((await fetch(`${base}/files/nope`, { headers: { cookie } })).status).toBe(404)
    expect((await fetch(`${base}/files/..%2F.jwt-secret`, { headers: { cookie } })).status).toBe(404)
  })

  it('answers HEAD and ranges on files without holding a file descriptor', async () => {
    const { cookie } = await signIn('heidi')
    const { body, type } = multipart('big.bin', randomBytes(90_000))
    const upload = await fetch(`${base}/api/uploads?room=share`, {
      method: 'POST',
      headers: { cookie, origin: base, 'content-type': type },
      body: new Uint8Array(body),
    })
    const { url } = (await upload.json()) as { url: string }
    const check = await leakCheck()
    for (let i = 0; i < 100; i++) {
      const head = await fetch(`${base}${url}`, { method: 'HEAD', headers: { cookie } })
      expect(head.status).toBe(200)
      expect(head.headers.get('content-length')).toBe('90000')
    }
    const part = await fetch(`${base}${url}`, { headers: { cookie, range: 'bytes=0-99' } })
    expect(part.status).toBe(206)
    expect((await part.arrayBuffer()).byteLength).toBe(100)
    await check.assertClean()
  })

  it('takes resumable (tus) uploads into the room named at creation, with who sends them', async () => {
    const { cookie } = await signIn('lena')
    const watcher = await signIn('mo')
    const socket = await openWs({ cookie: watcher.cookie })
    await request(socket, { type: 'subscribe', topic: 'room:tus' })
    const headers = { cookie, origin: base }
    const content = randomBytes(90_000)
    const file = new File([content], 'notes.bin', { type: 'application/octet-stream' })
    const result = await resumableUpload(`${base}/api/files`, file, {
      headers,
      metadata: { room: 'tus' },
      chunkSize: 30_000,
      store: false,
    })
    expect(result).toMatchObject({ size: 90_000, resumedFrom: 0 })
    const shared = await nextMessage(socket, (m) => (m.data as Json).type === 'file')
    expect(shared).toMatchObject({
      data: { file: { name: 'notes.bin', size: 90_000, from: { name: 'lena' } } },
    })
    expect(await nextMessage(socket, (m) => (m.data as Json).type === 'upload-progress')).toMatchObject({
      volatile: true,
      data: { from: { name: 'lena' }, total: 90_000 },
    })
    const url = (shared.data as { file: { url: string } }).file.url
    expect(Buffer.from(await (await fetch(`${base}${url}`, { headers: { cookie } })).arrayBuffer())).toEqual(
      content,
    )

    // No room, a bad room, too large, or nobody signed in: refused before anything is stored.
    const refused = (metadata: Record<string, string>, bytes = 10, extra = headers) =>
      resumableUpload(`${base}/api/files`, new Blob([randomBytes(bytes)]), {
        headers: extra,
        metadata,
        store: false,
        retryDelaysMs: [],
      })
    await expect(refused({})).rejects.toMatchObject({ status: 400 })
    await expect(refused({ room: 'bad room' })).rejects.toMatchObject({ status: 400 })
    await expect(refused({ room: 'tus' }, 100_001)).rejects.toMatchObject({ status: 413 })
    await expect(refused({ room: 'tus' }, 10, { cookie: '', origin: base })).rejects.toMatchObject({
      status: 401,
    })
  })

  it('413 over UPLOAD_MAX_BYTES and nothing kept; 400 without a room; 401 without a session', async () => {
    const { cookie } = await signIn('gina')
    const over = multipart('big.bin', randomBytes(100_001))
    const tooBig = await fetch(`${base}/api/uploads?room=share`, {
      method: 'POST',
      headers: { cookie, 'content-type': over.type },
      body: new Uint8Array(over.body),
    })
    expect(tooBig.status).toBe(413)
    const small = multipart('a.bin', randomBytes(10))
    expect(
      (
        await fetch(`${base}/api/uploads`, {
          method: 'POST',
          headers: { cookie, 'content-type': small.type },
          body: new Uint8Array(small.body),
        })
      ).status,
    ).toBe(400)
    expect(
      (
        await fetch(`${base}/api/uploads?room=share`, {
          method: 'POST',
          headers: { 'content-type': small.type },
          body: new Uint8Array(small.body),
        })
      ).status,
    ).toBe(401)
    const files = join(dataDir, 'files')
    expect((await readdir(files).catch(() => [])).filter((name) => !name.startsWith('.'))).toEqual([])
    expect(await readdir(join(files, '.partial')).catch(() => [])).toEqual([])
  })
})

describe('operations', () => {
  it('mounts the inspector for the admin only, when ADMIN_PASSWORD is set', async () => {
    expect((await fetch(`${base}/admin/inspector`)).status).toBe(404)
    expect(() => loadConfig({ DATA_DIR: dataDir, ADMIN_PASSWORD: 'short' })).toThrow('ADMIN_PASSWORD')
    const adminDir = await mkdtemp(join(tmpdir(), 'rooms-admin-'))
    const password = 'p'.repeat(20)
    const demo = buildDemo(
      loadConfig({ DATA_DIR: adminDir, JWT_SECRET: 'x'.repeat(40), ADMIN_PASSWORD: password }),
    )
    const admin = await serve(demo.app, { port: 0, hostname: '127.0.0.1', plugins: demo.plugins })
    try {
      const url = `http://127.0.0.1:${admin.port}/admin/inspector`
      const refused = await fetch(url)
      expect(refused.status).toBe(401)
      expect(refused.headers.get('www-authenticate')).toMatch(/^Basic/)
      const wrong = { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` }
      expect((await fetch(url, { headers: wrong })).status).toBe(401)
      const headers = { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` }
      const page = await fetch(url, { headers })
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('Flumen inspector')
      expect(await (await fetch(`${url}/api/overview`, { headers })).json()).toMatchObject({
        readOnly: false,
      })
    } finally {
      await admin.close({ timeoutMs: 200 })
      await rm(adminDir, { recursive: true, force: true })
    }
  })

  it('answers /healthz, /metrics and serves the page with a CSP', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' })
    const { cookie } = await signIn('hank')
    await openWs({ cookie })
    const metrics = await (await fetch(`${base}/metrics`)).text()
    // @flumen/metrics on the app's registry, beside its own counters and the process metrics.
    expect(metrics).toMatch(/flumen_connections\{transport="ws",route="\/ws"\} 1/)
    expect(metrics).toMatch(/flumen_connections\{transport="sse",route="\/sse"\} 0/)
    expect(metrics).toMatch(/flumen_hub_published_messages_total \d+/)
    expect(metrics).toMatch(/flumen_hub_deliveries_total \d+/)
    expect(metrics).toMatch(/flumen_uploads_total\{route="\/api\/files",result="completed"\} \d+/)
    expect(metrics).toContain('# TYPE flumen_hub_write_delay_seconds histogram')
    expect(metrics).toMatch(/rooms_uploads_total|# TYPE rooms_uploads_total counter/)
    expect(metrics).toContain('rooms_process_cpu_user_seconds_total')
    const page = await fetch(`${base}/`)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/)
    expect(await page.text()).toContain('Flumen Rooms')
    const script = await fetch(`${base}/app.js`)
    expect(script.headers.get('content-type')).toMatch(/javascript/)
    expect((await script.text()).length).toBeGreaterThan(1000)
  })

  it('publishes the dashboard over SSE every second', async () => {
    const { cookie } = await signIn('ivy')
    const stream = await openSse(`${base}/sse?topic=dashboard`, { cookie })
    streams.push(stream)
    const event = await stream.next((e) => (JSON.parse(e.data) as Json).type === 'message', 3_000)
    expect(event.id).toBeUndefined() // volatile: no position to resume from
    expect((JSON.parse(event.data) as { data: Json }).data).toMatchObject({
      node: expect.any(String),
      connections: { ws: expect.any(Number), sse: 1 },
      messagesPerSecond: expect.any(Number),
      deliveriesPerSecond: expect.any(Number),
      rooms: expect.any(Object),
      uploads: { active: 0, completed: 0, failed: 0 },
    })
  })
})
