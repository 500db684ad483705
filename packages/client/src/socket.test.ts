import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import { auth, jwt } from '@flumen/auth'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { upgradeWebSocket } from '@flumen/ws'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import type { RawSocket } from './node.js'
import { connect, FlumenClientError } from './node.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A plain `ws` server: echoes, and on "bye" closes 4321, on "kill" terminates. */
const startPlain = async (
  options: { perMessageDeflate?: boolean } = {},
): Promise<{ url: string; wss: WebSocketServer }> => {
  const server = createHttpServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: options.perMessageDeflate ?? false })
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ hello: true, extensions: req.headers['sec-websocket-extensions'] ?? null }))
    ws.on('message', (data, isBinary) => {
      const text = data.toString()
      if (text === 'bye') ws.close(4321, 'bye')
      else if (text === 'kill') ws.terminate()
      else ws.send(data, { binary: isBinary })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close()
        server.close(() => resolve())
      }),
  )
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, wss }
}

const track = (socket: RawSocket): RawSocket => {
  cleanups.push(() => {
    void socket.close()
  })
  return socket
}

const errorOf = async (promise: Promise<unknown>): Promise<FlumenClientError> => {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(FlumenClientError)
    return err as FlumenClientError
  }
  throw new Error('expected a rejection')
}

describe('connect() — the raw layer', () => {
  it('sends, receives with recv() and iterates a plain ws server', async () => {
    const { url } = await startPlain()
    const socket = track(await connect(url))
    expect(JSON.parse((await socket.recv({ timeoutMs: 2000 })) as string)).toMatchObject({ hello: true })
    socket.send('one')
    expect(await socket.recv({ timeoutMs: 2000 })).toBe('one')
    socket.send(new Uint8Array([1, 2, 3]))
    expect(new Uint8Array((await socket.recv({ timeoutMs: 2000 })) as ArrayBuffer)).toEqual(
      new Uint8Array([1, 2, 3]),
    )
    socket.send('two')
    socket.send('three')
    socket.send('bye')
    const seen: unknown[] = []
    await expect(
      (async () => {
        for await (const message of socket) seen.push(message)
      })(),
    ).rejects.toMatchObject({ code: 'ABNORMAL_CLOSE', closeCode: 4321 })
    expect(seen).toEqual(['two', 'three'])
    expect(await socket.closed).toEqual({ code: 4321, reason: 'bye', clean: false })
  })

  it('ends iteration quietly on a normal close, and rejects reads afterwards with CLOSED', async () => {
    const { url, wss } = await startPlain()
    const socket = track(await connect(url))
    await socket.recv()
    for (const client of wss.clients) client.close(1000, 'done')
    const seen: unknown[] = []
    for await (const message of socket) seen.push(message)
    expect(seen).toEqual([])
    expect((await errorOf(socket.recv())).code).toBe('CLOSED')
    expect(() => socket.send('late')).toThrow(FlumenClientError)
  })

  it('times out reads, and abnormal closes reject pending reads', async () => {
    const { url } = await startPlain()
    const socket = track(await connect(url))
    await socket.recv()
    const timeout = await errorOf(socket.recv({ timeoutMs: 50 }))
    expect(timeout.code).toBe('TIMEOUT')
    const pendingRead = socket.recv({ timeoutMs: 5000 })
    socket.send('kill')
    expect((await errorOf(pendingRead)).code).toBe('ABNORMAL_CLOSE')
    expect((await socket.closed).code).toBe(1006)
  })

  it('reports refused connections, connect timeouts, refused handshakes and aborts', async () => {
    // A closed port.
    const probe = createTcpServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const closedPort = (probe.address() as AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))
    expect((await errorOf(connect(`ws://127.0.0.1:${closedPort}`))).code).toBe('CONNECTION_REFUSED')

    // A server that accepts TCP and never answers the handshake.
    const accepted: Socket[] = []
    const silent: TcpServer = createTcpServer((socket) => accepted.push(socket))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    cleanups.push(() => {
      for (const socket of accepted) socket.destroy()
      return new Promise((resolve) => silent.close(resolve))
    })
    const silentUrl = `ws://127.0.0.1:${(silent.address() as AddressInfo).port}`
    const started = Date.now()
    expect((await errorOf(connect(silentUrl, { connectTimeoutMs: 150 }))).code).toBe('CONNECT_TIMEOUT')
    expect(Date.now() - started).toBeLessThan(2000)
    const controller = new AbortController()
    const aborted = connect(silentUrl, { signal: controller.signal })
    controller.abort()
    expect((await errorOf(aborted)).code).toBe('ABORTED')

    // A Flumen route behind auth: 401 before any upgrade.
    const app = createApp({ logError: () => {} })
    app.get(
      '/ws',
      auth({ strategies: [jwt({ secret: 'x'.repeat(32) })] }),
      upgradeWebSocket(() => ({})),
    )
    const server: FlumenServer = await serve(app, { port: 0, hostname: '127.0.0.1' })
    cleanups.push(() => server.close({ timeoutMs: 200 }))
    const refused = await errorOf(connect(`ws://127.0.0.1:${server.port}/ws`))
    expect(refused).toMatchObject({ code: 'HANDSHAKE_FAILED', status: 401 })
  })

  it('talks to a Flumen route, with subprotocols, headers and permessage-deflate under Node', async () => {
    const app = createApp()
    app.get(
      '/ws',
      upgradeWebSocket(
        (c) => ({
          onOpen: (_event, ws) =>
            ws.send(`hi ${c.req.header('x-name')} ${c.req.header('sec-websocket-extensions') ?? ''}`),
          onMessage: (event, ws) => ws.send(`echo ${String(event.data)}`),
        }),
        { protocols: ['chat.v2'], perMessageDeflate: true },
      ),
    )
    const server: FlumenServer = await serve(app, { port: 0, hostname: '127.0.0.1' })
    cleanups.push(() => server.close({ timeoutMs: 200 }))
    const socket = track(
      await connect(`ws://127.0.0.1:${server.port}/ws`, {
        protocols: ['chat.v2'],
        headers: { 'x-name': 'node' },
        perMessageDeflate: true,
      }),
    )
    expect(socket.protocol).toBe('chat.v2')
    expect(await socket.recv({ timeoutMs: 2000 })).toMatch(/^hi node permessage-deflate/)
    socket.send('x'.repeat(10_000))
    expect(await socket.recv({ timeoutMs: 2000 })).toBe(`echo ${'x'.repeat(10_000)}`)
    const plain = track(await connect(`ws://127.0.0.1:${server.port}/ws`))
    expect(await plain.recv({ timeoutMs: 2000 })).toBe('hi undefined ')
  })
})
