import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import type { FlumenBindings } from './app.js'
import { integerAtLeast } from './options.js'
import type { FlumenPlugin, FlumenServer, ServerState } from './plugins.js'
import { responseAlreadySent } from './plugins.js'
import type { BodyTimeouts, DiscardLimits } from './request-body.js'
import { bodyDefaults, hasRequestBody, RequestBody, resolveBodyTimeouts } from './request-body.js'
import { upgradeHandler } from './upgrade.js'

export interface FetchApp {
  fetch(request: Request, env: FlumenBindings): Response | Promise<Response>
}

export interface ServeOptions {
  /**
   * Port to listen on; 0 picks a free one (read it from `server.port`).
   * @default 3000
   */
  port?: number
  /**
   * Interface to bind.
   * @default all interfaces (Node's default)
   */
  hostname?: string
  /** Lifecycle participants started with the server and drained on close. */
  plugins?: readonly FlumenPlugin[]
  /**
   * Close gracefully on SIGTERM/SIGINT, then exit the process with code 0; a second signal
   * exits at once with code 1.
   * @default false
   */
  handleSignals?: boolean
  /**
   * Drain deadline used by `handleSignals`.
   * @default 10_000
   */
  shutdownTimeoutMs?: number
  /**
   * Time a client has to send the complete request head (slowloris guard).
   * @default 30_000
   */
  headersTimeoutMs?: number
  /**
   * Time a client has to send the complete request, body included. Off by default so that
   * long uploads live: `bodyTimeouts` guards every body by its pace instead.
   * @default 0 (off)
   */
  requestTimeoutMs?: number
  /**
   * Every request body, on every route: one that sends nothing for `idleTimeoutMs`, or averages
   * less than `minBytesPerSecond` over a `rateWindowMs` window, is answered 408 and its connection
   * closed. Upload routes set their own (`uploads()`, `tus()`); `false` turns the guard off.
   * @default { idleTimeoutMs: 30_000, minBytesPerSecond: 1024, rateWindowMs: 10_000 }
   */
  bodyTimeouts?: Partial<BodyTimeouts> | false
  /**
   * An answer sent before its request body was read (a 413, a 401 on an upload) is followed by
   * reading and discarding the rest of the body, so that clients still sending (fetch, XHR, curl)
   * read the answer instead of a reset; past `maxBytes` or `timeoutMs` the connection is closed.
   * @default { maxBytes: 67_108_864, timeoutMs: 30_000 }
   */
  discardBody?: Partial<DiscardLimits>
  /**
   * How long an idle keep-alive connection stays open.
   * @default 5_000
   */
  keepAliveTimeoutMs?: number
  /**
   * Largest request head in bytes; over it the client gets 431.
   * @default 16_384
   */
  maxHeaderSize?: number
  /**
   * Open connections (HTTP, WebSocket and SSE together); further ones are dropped at accept.
   * @default 16_384
   */
  maxConnections?: number
  /**
   * Called with errors no request can report: a failing plugin hook, a socket error.
   * @default console.error
   */
  logError?: (err: unknown, where: string) => void
}

const defaults = {
  port: 3000,
  shutdownTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 0,
  keepAliveTimeoutMs: 5_000,
  maxHeaderSize: 16_384,
  maxConnections: 16_384,
} as const

// While draining, connections that finished their last response are closed this often.
const drainPollMs = 50

const assertInteger = (name: string, value: number, min: number): void => {
  integerAtLeast('serve', name, value, min)
}

const noop = (): void => {}

/**
 * Starts `app` on @hono/node-server's request listener with WebSocket upgrades routed
 * through the same Hono middleware chain, and resolves once it listens.
 */
export const serve = async (app: FetchApp, options: ServeOptions = {}): Promise<FlumenServer> => {
  if (!app || typeof app.fetch !== 'function') throw new Error('serve: app must be a Hono app (createApp())')
  const port = options.port ?? defaults.port
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`serve: port must be an integer from 0 to 65535, got ${String(port)}`)
  }
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? defaults.shutdownTimeoutMs
  const headersTimeoutMs = options.headersTimeoutMs ?? defaults.headersTimeoutMs
  const requestTimeoutMs = options.requestTimeoutMs ?? defaults.requestTimeoutMs
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? defaults.keepAliveTimeoutMs
  const maxHeaderSize = options.maxHeaderSize ?? defaults.maxHeaderSize
  const maxConnections = options.maxConnections ?? defaults.maxConnections
  assertInteger('shutdownTimeoutMs', shutdownTimeoutMs, 0)
  assertInteger('headersTimeoutMs', headersTimeoutMs, 1)
  assertInteger('requestTimeoutMs', requestTimeoutMs, 0)
  assertInteger('keepAliveTimeoutMs', keepAliveTimeoutMs, 0)
  assertInteger('maxHeaderSize', maxHeaderSize, 1024)
  assertInteger('maxConnections', maxConnections, 1)
  const bodyTimeouts = resolveBodyTimeouts('serve', options.bodyTimeouts, 'bodyTimeouts.')
  const discardBody: DiscardLimits = { ...bodyDefaults.discard, ...options.discardBody }
  assertInteger('discardBody.maxBytes', discardBody.maxBytes, 0)
  assertInteger('discardBody.timeoutMs', discardBody.timeoutMs, 0)
  if (requestTimeoutMs !== 0 && requestTimeoutMs < headersTimeoutMs) {
    throw new Error('serve: requestTimeoutMs must be 0 (off) or at least headersTimeoutMs')
  }
  const logError =
    options.logError ?? ((err: unknown, where: string) => console.error(`[flumen] ${where}:`, err))

  const plugins: FlumenPlugin[] = [...(options.plugins ?? [])]
  const sockets = new Set<Socket>()
  let state: ServerState = 'listening'
  let closing: Promise<void> | undefined
  let handle: FlumenServer

  const bodies = new WeakMap<IncomingMessage, RequestBody>()
  const fetch = (request: Request, env: FlumenBindings): Response | Promise<Response> => {
    env.flumen = handle
    const body = bodies.get(env.incoming)
    if (!body) return app.fetch(request, env)
    env.body = body
    // A body cut for its pace was answered 408 already: whatever the app answers then is dropped.
    return Promise.resolve(app.fetch(request, env)).then((response) =>
      body.answered ? responseAlreadySent() : body.beforeAnswer(response),
    )
  }
  // Bodies left unread are handled by RequestBody (discarded within bounds), not by node-server's
  // own 500 ms cleanup, which closes on clients still sending.
  const listener = getRequestListener(fetch as Parameters<typeof getRequestListener>[0], {
    autoCleanupIncoming: false,
  })
  const node = createServer(
    {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      keepAliveTimeout: keepAliveTimeoutMs,
      maxHeaderSize,
      // Node checks the head/request deadlines on this interval (default 30 s); a deadline
      // shorter than the check is not a deadline.
      connectionsCheckingInterval: Math.min(headersTimeoutMs, 1_000),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      // A request that arrives on a kept-alive connection while draining is served, then
      // its connection closes.
      if (state !== 'listening') res.shouldKeepAlive = false
      if (hasRequestBody(req)) bodies.set(req, new RequestBody(req, res, bodyTimeouts, discardBody))
      void listener(req, res)
    },
  )
  node.maxConnections = maxConnections
  // One shared listener rather than a closure per connection: connections stay light.
  function untrack(this: Socket): void {
    sockets.delete(this)
  }
  node.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', untrack)
  })
  node.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy()
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  })

  node.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', noop) // a reset during the handshake is not an error of the app
    void handleUpgrade(req, socket, head).catch((err: unknown) => {
      logError(err, 'upgrade')
      socket.destroy()
    })
  })

  const handleUpgrade = upgradeHandler({
    app,
    accepting: () => state === 'listening',
    server: () => handle,
    logError,
  })

  const runHook = async (
    plugin: FlumenPlugin,
    hook: 'drain' | 'stop',
    signal: AbortSignal,
  ): Promise<void> => {
    try {
      await (hook === 'drain' ? plugin.drain?.(signal) : plugin.stop?.())
    } catch (err) {
      logError(err, `plugin ${plugin.name} ${hook}`)
    }
  }

  const shutdown = async (timeoutMs: number): Promise<void> => {
    state = 'draining'
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), timeoutMs)
    const idleSweep = setInterval(() => node.closeIdleConnections(), drainPollMs)
    const closed = new Promise<void>((resolve) => node.close(() => resolve()))
    const aborted = new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => resolve()))
    try {
      await Promise.race([
        Promise.all([closed, ...plugins.map((plugin) => runHook(plugin, 'drain', deadline.signal))]),
        aborted,
      ])
      if (deadline.signal.aborted) {
        node.closeAllConnections()
        for (const socket of sockets) socket.destroy()
        await closed
      }
    } finally {
      clearTimeout(timer)
      clearInterval(idleSweep)
    }
    for (const plugin of [...plugins].reverse()) await runHook(plugin, 'stop', deadline.signal)
    state = 'closed'
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      logError(new Error(`${signal} during shutdown: exiting now`), 'signal')
      process.exit(1)
    }
    void handle.close({ timeoutMs: shutdownTimeoutMs }).then(() => process.exit(0))
  }
  const removeSignalHandlers = (): void => {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }

  await new Promise<void>((resolve, reject) => {
    node.once('error', reject)
    node.listen({ port, host: options.hostname }, () => {
      node.off('error', reject)
      resolve()
    })
  })
  node.on('error', (err) => logError(err, 'server'))

  const address = node.address()
  const boundPort = typeof address === 'object' && address ? address.port : port
  const wildcard = !options.hostname || options.hostname === '0.0.0.0' || options.hostname === '::'
  const host = wildcard
    ? 'localhost'
    : options.hostname!.includes(':')
      ? `[${options.hostname}]`
      : options.hostname
  handle = {
    port: boundPort,
    url: `http://${host}:${boundPort}/`,
    node,
    get state() {
      return state
    },
    register(plugin) {
      if (!plugins.includes(plugin)) {
        plugins.push(plugin)
        if (plugin.start) {
          void Promise.resolve()
            .then(() => plugin.start?.(handle))
            .catch((err: unknown) => logError(err, `plugin ${plugin.name} start`))
        }
      }
      return () => {
        const index = plugins.indexOf(plugin)
        if (index !== -1) plugins.splice(index, 1)
      }
    },
    close(closeOptions = {}) {
      const timeoutMs = closeOptions.timeoutMs ?? defaults.shutdownTimeoutMs
      assertInteger('timeoutMs', timeoutMs, 0)
      closing ??= shutdown(timeoutMs).finally(removeSignalHandlers)
      return closing
    },
  }

  try {
    for (const plugin of plugins) await plugin.start?.(handle)
  } catch (err) {
    await handle.close({ timeoutMs: 0 })
    throw err
  }
  if (options.handleSignals) {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }
  return handle
}
