import { once } from 'node:events'
import type { Socket } from 'node:net'
import { connect } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import type { FlumenPlugin, FlumenServer } from './index.js'
import { createApp, FlumenError, serve } from './index.js'

const servers: FlumenServer[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 100 })))
})

const start = async (app = createApp(), options: Parameters<typeof serve>[1] = {}): Promise<FlumenServer> => {
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {}, ...options })
  servers.push(server)
  return server
}

/** Sends raw bytes and resolves with everything the server wrote until it closed. */
const rawRequest = async (port: number, data: string): Promise<string> => {
  const socket = connect(port, '127.0.0.1')
  sockets.push(socket)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.write(data)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

const upgradeHead = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe('serve', () => {
  it('listens on an ephemeral port and serves the app', async () => {
    const app = createApp()
    app.get('/hello', (c) => c.text('hi'))
    const server = await start(app)
    expect(server.port).toBeGreaterThan(0)
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`)
    const res = await fetch(new URL('/hello', server.url))
    expect(await res.text()).toBe('hi')
    expect(server.state).toBe('listening')
  })

  it('applies the hardening defaults and lets long uploads live', async () => {
    const server = await start()
    expect(server.node.headersTimeout).toBe(30_000)
    expect(server.node.requestTimeout).toBe(0)
    expect(server.node.keepAliveTimeout).toBe(5_000)
    expect(server.node.maxConnections).toBe(16_384)
  })

  it('cuts a client that never finishes its request head with 408', async () => {
    const server = await start(createApp(), { headersTimeoutMs: 200 })
    const started = Date.now()
    const reply = await rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n')
    expect(reply).toMatch(/^HTTP\/1.1 408 /)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it('answers an oversized request head with 431', async () => {
    const server = await start(createApp(), { maxHeaderSize: 2048 })
    const reply = await rawRequest(
      server.port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`,
    )
    expect(reply).toMatch(/^HTTP\/1.1 431 /)
  })

  it('rejects bad options with a clear error', async () => {
    await expect(serve(createApp(), { port: -1 })).rejects.toThrow(/port must be an integer/)
    await expect(serve(createApp(), { port: 0, maxConnections: 0 })).rejects.toThrow(/maxConnections/)
    await expect(serve(createApp(), { port: 0, requestTimeoutMs: 10 })).rejects.toThrow(/requestTimeoutMs/)
    await expect(serve({} as never)).rejects.toThrow(/must be a Hono app/)
  })

  it('rejects when the port is taken', async () => {
    const first = await start()
    await expect(serve(createApp(), { port: first.port, hostname: '127.0.0.1' })).rejects.toThrow(
      /EADDRINUSE/,
    )
  })
})

describe('graceful close', () => {
  it('drains an in-flight slow response and refuses new connections', async () => {
    const release = deferred()
    const entered = deferred()
    const app = createApp()
    app.get('/slow', async (c) => {
      entered.resolve()
      await release.promise
      return c.text('done')
    })
    const server = await start(app)
    const slow = fetch(new URL('/slow', server.url))
    await entered.promise

    const closing = server.close({ timeoutMs: 5_000 })
    expect(server.state).toBe('draining')
    const refused = connect(server.port, '127.0.0.1')
    sockets.push(refused)
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')

    release.resolve()
    const res = await slow
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('done')
    await closing
    expect(server.state).toBe('closed')
    expect(server.close()).toBe(closing)
  })

  it('destroys what is left at the deadline', async () => {
    const app = createApp()
    app.get('/never', () => new Promise<Response>(() => {}))
    const server = await start(app)
    const hanging = fetch(new URL('/never', server.url)).catch((err: unknown) => err)
    await vi.waitFor(() => expect(server.node.listenerCount('request')).toBe(1))
    await new Promise((r) => setTimeout(r, 50)) // let the request reach the handler
    const started = Date.now()
    await server.close({ timeoutMs: 200 })
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await hanging).toBeInstanceOf(Error)
  })

  it('runs plugin hooks in order: start, drain with a deadline signal, stop', async () => {
    const calls: string[] = []
    let drainSignal: AbortSignal | undefined
    const plugin: FlumenPlugin = {
      name: 'probe',
      start: () => {
        calls.push('start')
      },
      drain: async (signal) => {
        calls.push('drain')
        drainSignal = signal
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
      },
      stop: () => {
        calls.push('stop')
      },
    }
    const failing: FlumenPlugin = {
      name: 'failing',
      drain: () => {
        throw new Error('boom')
      },
    }
    const logged: string[] = []
    const server = await start(createApp(), {
      plugins: [plugin, failing],
      logError: (_e, where) => logged.push(where),
    })
    expect(calls).toEqual(['start'])
    await server.close({ timeoutMs: 100 })
    expect(calls).toEqual(['start', 'drain', 'stop'])
    expect(drainSignal?.aborted).toBe(true)
    expect(logged).toEqual(['plugin failing drain'])
  })

  it('lets routes register plugins at run time through c.env.flumen', async () => {
    const stopped = vi.fn()
    const plugin: FlumenPlugin = { name: 'route', stop: stopped }
    const app = createApp()
    app.get('/register', (c) => {
      c.env.flumen.register(plugin)
      c.env.flumen.register(plugin) // once per object
      return c.text(c.env.flumen.state)
    })
    const server = await start(app)
    expect(await (await fetch(new URL('/register', server.url))).text()).toBe('listening')
    await server.close({ timeoutMs: 100 })
    expect(stopped).toHaveBeenCalledTimes(1)
  })

  it('closes the server again when a plugin fails to start', async () => {
    const plugin: FlumenPlugin = {
      name: 'bad',
      start: () => {
        throw new Error('no database')
      },
    }
    await expect(serve(createApp(), { port: 0, plugins: [plugin] })).rejects.toThrow('no database')
  })
})

describe('upgrades', () => {
  it('answers an upgrade to an unknown path with a JSON 404 and no upgrade', async () => {
    const server = await start()
    const reply = await rawRequest(server.port, upgradeHead('/nope'))
    expect(reply).toMatch(/^HTTP\/1.1 404 Not Found\r\n/)
    expect(reply).toContain('Connection: close')
    expect(reply).toContain('{"error":{"code":"NOT_FOUND","message":"Not found"}}')
    expect(reply).not.toContain('101')
  })

  it('sends a middleware rejection as a real HTTP response with its headers', async () => {
    const app = createApp()
    app.use('/ws', async (c, next) => {
      if (!c.req.header('authorization')) {
        throw new FlumenError('UNAUTHORIZED', 'Missing token', { headers: { 'WWW-Authenticate': 'Bearer' } })
      }
      await next()
    })
    app.get('/ws', (c) => c.text('never'))
    const server = await start(app)
    const reply = await rawRequest(server.port, upgradeHead('/ws'))
    expect(reply).toMatch(/^HTTP\/1.1 401 Unauthorized\r\n/)
    expect(reply.toLowerCase()).toContain('www-authenticate: bearer')
    expect(reply).toContain('"code":"UNAUTHORIZED"')
  })

  it('hands the socket to a route that accepts, with the headers middleware set', async () => {
    const wss = new WebSocketServer({ noServer: true })
    const app = createApp()
    app.use('*', async (c, next) => {
      await next()
      c.header('X-Request-Id', 'r-1')
    })
    app.get('/echo', (c) => {
      const upgrade = c.env.upgrade
      if (!upgrade) return c.text('upgrade required', 426)
      upgrade.accept((headers) => {
        wss.once('headers', (lines: string[]) => {
          headers.forEach((value, key) => {
            lines.push(`${key}: ${value}`)
          })
        })
        wss.handleUpgrade(c.env.incoming, upgrade.socket, upgrade.head, (ws) => {
          ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
        })
      })
      return c.body(null)
    })
    const server = await start(app)
    const client = new WebSocket(`ws://127.0.0.1:${server.port}/echo`)
    const upgraded = once(client, 'upgrade')
    await once(client, 'open')
    const [upgradeResponse] = (await upgraded) as [{ headers: Record<string, string> }]
    expect(upgradeResponse.headers['x-request-id']).toBe('r-1')
    client.send('ping')
    const [data] = (await once(client, 'message')) as [Buffer]
    expect(data.toString()).toBe('ping')

    // Nobody drains this socket, so close() destroys it at the deadline.
    const closed = once(client, 'close')
    await server.close({ timeoutMs: 100 })
    const [code] = (await closed) as [number]
    expect(code).toBe(1006)
  })

  it('reads at most 64 KiB of a large answer to an upgrade request, then cancels it', async () => {
    let pulled = 0
    let cancelled = false
    const app = createApp()
    // A file route, say, answering a GET that also asks to upgrade: 100 MiB it must never buffer.
    app.get('/file', () => {
      const chunk = new Uint8Array(16 * 1024)
      return new Response(
        new ReadableStream({
          pull(controller) {
            pulled += chunk.byteLength
            if (pulled > 100 * 2 ** 20) controller.close()
            else controller.enqueue(chunk)
          },
          cancel() {
            cancelled = true
          },
        }),
      )
    })
    const server = await start(app)
    const reply = await rawRequest(server.port, upgradeHead('/file'))
    expect(reply).toMatch(/^HTTP\/1.1 200 /)
    expect(reply).toContain('Content-Length: 0')
    expect(pulled).toBeLessThan(1024 * 1024)
    expect(cancelled).toBe(true)
  })

  it('refuses upgrades while draining with 503', async () => {
    const release = deferred()
    const app = createApp()
    app.get('/slow', async (c) => {
      await release.promise
      return c.text('ok')
    })
    const server = await start(app)
    const socket = connect(server.port, '127.0.0.1')
    sockets.push(socket)
    await once(socket, 'connect')
    const slow = fetch(new URL('/slow', server.url))
    await new Promise((r) => setTimeout(r, 50))
    const closing = server.close({ timeoutMs: 2_000 })
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.write(upgradeHead('/ws'))
    await once(socket, 'close')
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1.1 503 /)
    release.resolve()
    await slow
    await closing
  })
})
