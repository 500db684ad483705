import { once } from 'node:events'
import type { Socket } from 'node:net'
import { connect } from 'node:net'
import { curl, fetchOutOfProcess, leakCheck } from '@flumen/testing'
import { bodyLimit } from 'hono/body-limit'
import { afterEach, describe, expect, it } from 'vitest'
import type { FlumenServer, ServeOptions } from './index.js'
import { createApp, FlumenError, serve } from './index.js'

const servers: FlumenServer[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const logged: unknown[] = []

/** An app whose /early answers 413 before reading the body, /json reads it, /slow reads it late. */
const start = async (options: ServeOptions = {}): Promise<FlumenServer> => {
  const app = createApp({ logError: (err) => logged.push(err) })
  app.post('/early', () => {
    throw new FlumenError('TOO_LARGE', 'No bodies here')
  })
  app.post('/early-close', () => {
    throw new FlumenError('TOO_LARGE', 'No bodies here', { headers: { connection: 'close' } })
  })
  app.post('/json', async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }))
  app.post('/late', async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    return c.json({ bytes: (await c.req.arrayBuffer()).byteLength })
  })
  app.post('/limited', bodyLimit({ maxSize: 1024 }), (c) => c.text('never'))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {}, ...options })
  servers.push(server)
  return server
}

/** Sends a head, then the body one byte every `everyMs`; resolves with what the server wrote and when it closed. */
const trickle = async (
  port: number,
  path: string,
  everyMs: number,
): Promise<{ reply: string; ms: number }> => {
  const socket = connect(port, '127.0.0.1')
  sockets.push(socket)
  await once(socket, 'connect')
  const started = Date.now()
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`)
  const timer = setInterval(() => socket.writable && socket.write('x'), everyMs)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', () => {})
  await once(socket, 'close')
  clearInterval(timer)
  return { reply: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started }
}

describe('request bodies: an early answer is readable by clients still sending', () => {
  it('fetch reads a 413 sent before its body was read, even one that asks to close', async () => {
    const server = await start()
    for (const path of ['early', 'early-close']) {
      for (const body of [
        { size: 20 * 2 ** 20 },
        { size: 4 * 2 ** 20, multipart: true },
        { size: 4 * 2 ** 20, chunkSize: 256 * 1024, delayMs: 50 },
      ]) {
        const outcome = await fetchOutOfProcess({ url: `${server.url}${path}`, body })
        expect(outcome).toMatchObject({ ok: true, status: 413 })
        if (outcome.ok)
          expect(JSON.parse(outcome.text)).toEqual({
            error: { code: 'TOO_LARGE', message: 'No bodies here' },
          })
      }
    }
  })

  it('curl reads a 413 sent before its body was read', async () => {
    const server = await start()
    for (const path of ['early', 'early-close']) {
      const outcome = await curl([
        '--data-binary',
        `@${process.execPath}`,
        '-H',
        'Expect:',
        `${server.url}${path}`,
      ])
      expect(outcome).toMatchObject({ ok: true, status: 413 })
    }
  })

  it('fetch and curl read the JSON 413 of hono/body-limit', async () => {
    const server = await start()
    const fetched = await fetchOutOfProcess({ url: `${server.url}limited`, body: { size: 2 * 2 ** 20 } })
    expect(fetched).toMatchObject({ ok: true, status: 413 })
    if (fetched.ok) expect(JSON.parse(fetched.text).error.code).toBe('TOO_LARGE')
    const curled = await curl(['--data-binary', `@${process.execPath}`, `${server.url}limited`])
    expect(curled).toMatchObject({ ok: true, status: 413 })
    if (curled.ok) expect(curled.headers['content-type']).toMatch(/^application\/json/)
  })

  it('keeps the connection usable after a 413 from a route that stopped reading midway', async () => {
    // hono/body-limit reads until the limit, then answers: its reader stays attached, paused.
    const server = await start()
    let closed = 0
    server.node.on('connection', (socket: Socket) => socket.on('close', () => closed++))
    const statuses: number[] = []
    for (const body of ['x', 'y'.repeat(256 * 1024), 'z', 'y'.repeat(4096), 'z']) {
      const path = body.length > 1 ? 'limited' : 'json'
      const response = await fetch(`${server.url}${path}`, { method: 'POST', body })
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    // Before, the request after a 413 waited for the kept-alive connection, then got ECONNRESET.
    expect(statuses).toEqual([200, 413, 200, 413, 200])
    expect(closed).toBe(0) // the connection a 413 went out on served the next requests
  })

  it('closes once the discarded rest passes discardBody.maxBytes', async () => {
    const server = await start({ discardBody: { maxBytes: 1024 * 1024 } })
    let read = 0
    server.node.on('connection', (socket: Socket) => socket.on('close', () => (read = socket.bytesRead)))
    const outcome = await fetchOutOfProcess({
      url: `${server.url}early`,
      body: { size: 32 * 2 ** 20, chunkSize: 512 * 1024, delayMs: 5 },
    })
    // The client may or may not see the 413 before the close; the server stopped reading early.
    expect(outcome.ok ? outcome.status : 413).toBe(413)
    expect(read).toBeGreaterThan(0)
    expect(read).toBeLessThan(8 * 2 ** 20)
  })
})

describe('request bodies: a pace guard on every route', () => {
  it('answers a trickling JSON body 408 and closes, without logging an error', async () => {
    logged.length = 0
    const server = await start({ bodyTimeouts: { minBytesPerSecond: 100, rateWindowMs: 600 } })
    const { reply, ms } = await trickle(server.port, '/json', 200)
    expect(reply).toMatch(/^HTTP\/1.1 408 /)
    expect(reply).toMatch(/connection: close/i)
    expect(reply).toContain('"code":"TIMEOUT"')
    expect(ms).toBeLessThan(3_000)
    expect(logged).toEqual([])
  })

  it('answers a stalled body 408 after idleTimeoutMs', async () => {
    const server = await start({ bodyTimeouts: { idleTimeoutMs: 300 } })
    const { reply, ms } = await trickle(server.port, '/json', 60_000)
    expect(reply).toMatch(/^HTTP\/1.1 408 /)
    expect(ms).toBeGreaterThanOrEqual(280)
    expect(ms).toBeLessThan(2_000)
  })

  it('does not blame the client while the app is not reading (its own backpressure)', async () => {
    const server = await start({
      bodyTimeouts: { idleTimeoutMs: 300, minBytesPerSecond: 1024, rateWindowMs: 300 },
    })
    const outcome = await fetchOutOfProcess({ url: `${server.url}late`, body: { size: 2 * 2 ** 20 } })
    expect(outcome).toMatchObject({ ok: true, status: 200 })
    if (outcome.ok) expect(JSON.parse(outcome.text)).toEqual({ bytes: 2 * 2 ** 20 })
  })

  it('leaves no socket, timer or listener behind after bad bodies', async () => {
    const server = await start({
      bodyTimeouts: { idleTimeoutMs: 200, minBytesPerSecond: 100, rateWindowMs: 400 },
    })
    // Sockets of the out-of-process clients close when the children exit: under a loaded CI that
    // can take longer than the default 3 s settle.
    const check = await leakCheck({ emitters: [server.node], settleMs: 10_000 })
    await Promise.all([
      trickle(server.port, '/json', 100),
      trickle(server.port, '/json', 60_000),
      fetchOutOfProcess({
        url: `${server.url}early`,
        body: { size: 2 * 2 ** 20, chunkSize: 65536, delayMs: 2 },
      }),
      fetchOutOfProcess({ url: `${server.url}limited`, body: { size: 100_000 } }),
    ])
    for (const socket of sockets.splice(0)) socket.destroy()
    await check.assertClean()
  })
})
