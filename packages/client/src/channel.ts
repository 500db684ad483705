import { fullJitter } from './backoff.js'
import { FlumenClientError } from './errors.js'
import type { CloseInfo, RawSocket, SocketFactory } from './socket.js'
import { connectWith } from './socket.js'

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** A token, or a function giving a fresh one (called before every connect and before expiry). */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>)

export interface KeepAliveOptions {
  /**
   * After this long without any message from the server, the client sends a ping.
   * @default 25000
   */
  intervalMs?: number
  /**
   * A connection that answers nothing this long after a ping is dropped and reconnected.
   * @default 10000
   */
  pongTimeoutMs?: number
}

export interface ClientOptions {
  /** `ws://` or `wss://` URL of a `hub.websocket()` route. */
  url: string
  /** Sent as the `bearer.<token>` subprotocol (works in browsers and Node). */
  token?: TokenSource
  /**
   * Delay before reconnect attempt `attempt` (0, 1, 2…).
   * @default full-jitter exponential backoff from 500 ms up to 20 s (`fullJitter()`)
   */
  retryDelayMs?: (attempt: number) => number
  /** App-level ping: browsers cannot see protocol pings. `false` turns it off. */
  keepAlive?: KeepAliveOptions | false
  /**
   * How long publish, subscribe and call wait for their answer.
   * @default 10000
   */
  requestTimeoutMs?: number
  /**
   * Publishes kept while offline and sent in order on reconnect; more reject with
   * OFFLINE_QUEUE_FULL.
   * @default 1000
   */
  maxOfflineQueue?: number
  /**
   * With a token function and a JWT token: how long before `exp` a fresh token is fetched and
   * sent as `{"type":"auth"}`.
   * @default 30000
   */
  refreshBeforeExpiryMs?: number
  /** @default 10000 */
  connectTimeoutMs?: number
  /** Handshake headers (Node only). */
  headers?: Record<string, string>
  /** permessage-deflate (Node only). @default false */
  perMessageDeflate?: boolean
}

export interface MessageMeta {
  topic: string
  epoch: string
  offset: number
}

export interface SubscribeOptions {
  /** Start from a known position (e.g. saved across page loads) instead of now. */
  since?: { epoch: string; offset: number }
}

export interface Subscription {
  readonly topic: string
  /** Settles with the first subscribe answer (rejects with the server's code, e.g. FORBIDDEN). */
  readonly ready: Promise<{ recovered: boolean }>
  /** Where this client stands in the topic (what it has received up to). */
  readonly position: { epoch: string; offset: number } | undefined
  unsubscribe(): Promise<void>
}

export interface ClientEvents {
  /** State changes; `detail` says why a connection ended. */
  state: (state: ClientState, detail: { close?: CloseInfo; error?: FlumenClientError }) => void
  /** A topic's gap could not be recovered (history window passed, server restarted): resync it. */
  reset: (event: { topic: string; epoch: string; offset: number }) => void
  /** Presence of a subscribed topic changed: the users now present. */
  presence: (event: { topic: string; members: unknown[] }) => void
  /** Errors nobody awaits: a server error without a request, a handler that threw, a failed token refresh. */
  error: (error: FlumenClientError) => void
}

export interface Client {
  readonly state: ClientState
  subscribe<T = unknown>(
    topic: string,
    handler: (data: T, meta: MessageMeta) => void,
    options?: SubscribeOptions,
  ): Subscription
  /** Resolves with the message's offset once the server stored it; queued while offline. */
  publish(topic: string, data: unknown, options?: { timeoutMs?: number; echo?: boolean }): Promise<number>
  call<R = unknown>(method: string, data?: unknown, options?: { timeoutMs?: number }): Promise<R>
  /** The users present in a subscribed topic, as last reported. */
  presence(topic: string): unknown[]
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void
  /** Closes for good: no reconnect, every timer cleared, pending operations rejected with CLOSED. */
  close(): Promise<void>
}

interface Pending {
  resolve(message: Record<string, unknown>): void
  reject(err: FlumenClientError): void
  timer: ReturnType<typeof setTimeout>
}

interface TopicState {
  readonly handlers: Set<(data: unknown, meta: MessageMeta) => void>
  position: { epoch: string; offset: number } | undefined
  members: Map<string, unknown>
  /** True once the server acknowledged a subscribe on the current connection. */
  live: boolean
  /** Settles with the first subscribe answer; every subscriber of the topic shares it. */
  readonly ready: Promise<{ recovered: boolean }>
  /** Set until `ready` settles. */
  settle: { resolve(value: { recovered: boolean }): void; reject(err: FlumenClientError): void } | undefined
  /** Subscribes refused for a passing reason (UNAVAILABLE…) in a row: the backoff of the next try. */
  failures: number
}

/** Refusals that say the topic itself is not to be had: the subscription ends. Others are retried. */
const permanentRefusals = new Set(['FORBIDDEN', 'UNAUTHORIZED', 'BAD_REQUEST', 'NOT_FOUND'])

interface Queued {
  readonly message: Record<string, unknown>
  readonly timeoutMs: number
  resolve(message: Record<string, unknown>): void
  reject(err: FlumenClientError): void
}

/** `exp` of a JWT in ms, or undefined for anything else. */
const jwtExpiry = (token: string): number | undefined => {
  const payload = token.split('.')[1]
  if (!payload) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const json = JSON.parse(
      typeof atob === 'function' ? atob(base64) : Buffer.from(base64, 'base64').toString(),
    ) as { exp?: unknown }
    return typeof json.exp === 'number' ? json.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

const memberKey = (member: unknown): string =>
  typeof member === 'object' && member !== null && 'id' in member ? String(member.id) : JSON.stringify(member)

/**
 * The channel client (protocol `flumen.v1`): subscriptions that survive reconnects and recover
 * what they missed, acknowledged publishes with an offline queue, RPC, presence, token refresh.
 */
export const createClientWith = (factory: SocketFactory, options: ClientOptions): Client => {
  if (typeof options?.url !== 'string' || !/^wss?:\/\//.test(options.url))
    throw new Error('createClient: url must be a ws:// or wss:// URL')
  const retryDelayMs = options.retryDelayMs ?? fullJitter()
  const keepAlive =
    options.keepAlive === false
      ? undefined
      : { intervalMs: 25_000, pongTimeoutMs: 10_000, ...options.keepAlive }
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const maxOfflineQueue = options.maxOfflineQueue ?? 1000
  const refreshBeforeExpiryMs = options.refreshBeforeExpiryMs ?? 30_000
  const tokenSource = options.token

  let state: ClientState = 'connecting'
  let socket: RawSocket | undefined
  let closing = false
  let nextId = 1
  let currentToken: string | undefined
  const topics = new Map<string, TopicState>()
  const pending = new Map<number, Pending>()
  const offline: Queued[] = []
  const listeners: { [E in keyof ClientEvents]: Set<ClientEvents[E]> } = {
    state: new Set(),
    reset: new Set(),
    presence: new Set(),
    error: new Set(),
  }
  /** Timers of the current connection, and the wait between connections. */
  const timers = new Set<ReturnType<typeof setTimeout>>()
  let wake: (() => void) | undefined
  /** Cancels a connect in progress when the client closes. */
  const stopping = new AbortController()

  const emit = <E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void => {
    for (const listener of listeners[event]) {
      try {
        ;(listener as (...values: unknown[]) => void)(...args)
      } catch (err) {
        if (event !== 'error')
          emit('error', new FlumenClientError('HANDLER_ERROR', String(err), { cause: err }))
      }
    }
  }
  const setState = (
    next: ClientState,
    detail: { close?: CloseInfo; error?: FlumenClientError } = {},
  ): void => {
    if (state === next && !detail.close && !detail.error) return
    state = next
    emit('state', next, detail)
  }
  const later = (ms: number, run: () => void): ReturnType<typeof setTimeout> => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      run()
    }, ms)
    timers.add(timer)
    return timer
  }
  const clearTimers = (): void => {
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
  }

  const resolveToken = async (): Promise<string | undefined> => {
    if (typeof tokenSource === 'function') return (await tokenSource()) ?? undefined
    return tokenSource
  }

  /** Sends a request on the open socket and waits for its answer. */
  const request = (
    message: Record<string, unknown>,
    timeoutMs = requestTimeoutMs,
  ): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (!socket?.isOpen) {
        reject(new FlumenClientError('DISCONNECTED', 'Not connected'))
        return
      }
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(
          new FlumenClientError('TIMEOUT', `No answer to ${String(message.type)} within ${timeoutMs} ms`),
        )
      }, timeoutMs)
      pending.set(id, { resolve, reject, timer })
      socket.send(JSON.stringify({ ...message, id }))
    })

  const failPending = (err: FlumenClientError): void => {
    for (const entry of pending.values()) {
      clearTimeout(entry.timer)
      entry.reject(err)
    }
    pending.clear()
  }

  const sendSubscribe = (topic: string, sub: TopicState): void => {
    const since = sub.position
    request({ type: 'subscribe', topic, ...(since && { since }) }).then(
      (ack) => {
        const position = { epoch: String(ack.epoch), offset: Number(ack.offset) }
        // Recovered: the missed messages follow and move the position; otherwise start from now.
        if (!since || ack.recovered !== true) sub.position = position
        sub.live = true
        sub.failures = 0
        if (since && ack.recovered !== true) emit('reset', { topic, ...position })
        sub.settle?.resolve({ recovered: !since || ack.recovered === true })
        sub.settle = undefined
      },
      (err: FlumenClientError) => {
        if (err.code === 'DISCONNECTED' || err.code === 'CLOSED') return // retried on reconnect
        if (err.code === 'TIMEOUT' && err.message.startsWith('No answer')) {
          socket?.close(4000, 'Subscribe timed out') // a fresh connection retries it
          return
        }
        // A passing refusal (the server's engine is down, a rate limit): the topic is still wanted,
        // so it is asked for again with backoff on this connection (or after the next reconnect).
        if (!permanentRefusals.has(err.code)) {
          const attempt = sub.failures++
          later(retryDelayMs(attempt), () => {
            if (topics.get(topic) === sub && !sub.live && socket?.isOpen) sendSubscribe(topic, sub)
          })
          return
        }
        topics.delete(topic)
        // Refused at first: the subscribers' `ready` says so; refused on a resubscribe: 'error'.
        if (sub.settle) sub.settle.reject(err)
        else emit('error', err)
        sub.settle = undefined
      },
    )
  }

  const onServerMessage = (raw: string): void => {
    let message: Record<string, unknown>
    try {
      message = JSON.parse(raw) as Record<string, unknown>
    } catch {
      emit('error', new FlumenClientError('PROTOCOL_ERROR', 'The server sent malformed JSON'))
      return
    }
    switch (message.type) {
      case 'message': {
        const topic = String(message.topic)
        const sub = topics.get(topic)
        if (!sub) return
        const epoch = String(message.epoch)
        const offset = Number(message.offset)
        const position = sub.position
        // Already seen (a recovery overlapping live delivery): drop.
        if (position && position.epoch === epoch && offset <= position.offset) return
        // Another epoch while live: the server's history is not the one this client followed (it
        // was lost); what came between cannot be known, so the app resyncs.
        if (position && position.epoch !== epoch) emit('reset', { topic, epoch, offset: offset - 1 })
        sub.position = { epoch, offset }
        const meta = { topic, epoch, offset }
        for (const handler of sub.handlers) {
          try {
            handler(message.data, meta)
          } catch (err) {
            emit('error', new FlumenClientError('HANDLER_ERROR', String(err), { cause: err }))
          }
        }
        return
      }
      case 'ack':
      case 'result':
      case 'error': {
        const id = message.id
        const entry = typeof id === 'number' ? pending.get(id) : undefined
        if (!entry) {
          if (message.type === 'error')
            emit('error', new FlumenClientError(String(message.code), String(message.message)))
          return
        }
        pending.delete(id as number)
        clearTimeout(entry.timer)
        if (message.type === 'error')
          entry.reject(new FlumenClientError(String(message.code), String(message.message)))
        else entry.resolve(message)
        return
      }
      case 'presence': {
        const topic = String(message.topic)
        const sub = topics.get(topic)
        if (!sub) return
        if (Array.isArray(message.members))
          sub.members = new Map(message.members.map((m) => [memberKey(m), m]))
        if (Array.isArray(message.join))
          for (const member of message.join) sub.members.set(memberKey(member), member)
        if (Array.isArray(message.leave))
          for (const member of message.leave) sub.members.delete(memberKey(member))
        emit('presence', { topic, members: [...sub.members.values()] })
        return
      }
      default:
        return // pong and future types
    }
  }

  const scheduleRefresh = (): void => {
    if (typeof tokenSource !== 'function' || currentToken === undefined) return
    const expiresAt = jwtExpiry(currentToken)
    if (expiresAt === undefined) return
    later(Math.max(0, expiresAt - refreshBeforeExpiryMs - Date.now()), async () => {
      try {
        const fresh = await resolveToken()
        if (!fresh || !socket?.isOpen) return
        await request({ type: 'auth', token: fresh })
        currentToken = fresh
        scheduleRefresh()
      } catch (err) {
        emit(
          'error',
          err instanceof FlumenClientError ? err : new FlumenClientError('AUTH_REFRESH_FAILED', String(err)),
        )
      }
    })
  }

  /** Runs one connection until it ends; resolves with how it ended. */
  const runConnection = async (open: RawSocket): Promise<CloseInfo> => {
    socket = open
    let lastReceivedAt = Date.now()
    let dead: ((info: CloseInfo) => void) | undefined
    const abandoned = new Promise<CloseInfo>((resolve) => {
      dead = resolve
    })
    // Resubscribe (recovering from the last positions), then flush what was published offline.
    for (const sub of topics.values()) sub.live = false
    for (const [topic, sub] of topics) sendSubscribe(topic, sub)
    for (const queued of offline.splice(0)) {
      request(queued.message, queued.timeoutMs).then(queued.resolve, queued.reject)
    }
    setState('open')
    scheduleRefresh()
    if (keepAlive) {
      // Timers in background tabs fire late: liveness is judged by what arrived, and a pong has
      // its full timeout from the moment the ping actually went out.
      const check = (): void => {
        const idle = Date.now() - lastReceivedAt
        if (idle < keepAlive.intervalMs) {
          later(keepAlive.intervalMs - idle, check)
          return
        }
        const pingAt = Date.now()
        try {
          open.send('{"type":"ping"}')
        } catch {
          return
        }
        later(keepAlive.pongTimeoutMs, () => {
          if (lastReceivedAt >= pingAt) check()
          else {
            open.close(4000, 'No pong')
            dead?.({ code: 4000, reason: 'No pong', clean: false })
          }
        })
      }
      later(keepAlive.intervalMs, check)
    }
    const reading = (async (): Promise<CloseInfo> => {
      try {
        for await (const data of open) {
          lastReceivedAt = Date.now()
          if (typeof data === 'string') onServerMessage(data)
        }
      } catch {
        // an abnormal close: `closed` says how
      }
      return open.closed
    })()
    const info = await Promise.race([reading, abandoned])
    clearTimers()
    socket = undefined
    failPending(
      new FlumenClientError('DISCONNECTED', 'The connection dropped before the answer', {
        closeCode: info.code,
      }),
    )
    return info
  }

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = later(ms, () => {
        wake = undefined
        resolve()
      })
      wake = () => {
        clearTimeout(timer)
        timers.delete(timer)
        wake = undefined
        resolve()
      }
    })

  /** After 401/403/4001/4003 only a different token can help: the token function's, if it gives one. */
  const newToken = async (used: string | undefined): Promise<string | undefined> => {
    if (typeof tokenSource !== 'function') return undefined
    const fresh = await resolveToken().catch(() => undefined)
    return fresh && fresh !== used ? fresh : undefined
  }

  const loop = (async (): Promise<void> => {
    let attempt = 0
    /** A token already fetched to decide whether to reconnect, used by the next attempt. */
    let nextToken: string | undefined
    let lastError: FlumenClientError | undefined
    while (!closing) {
      setState(
        attempt === 0 && (state as ClientState) !== 'reconnecting' ? 'connecting' : 'reconnecting',
        lastError ? { error: lastError } : {},
      )
      let token: string | undefined = nextToken
      nextToken = undefined
      try {
        token ??= await resolveToken()
      } catch (err) {
        lastError = new FlumenClientError('TOKEN_ERROR', String(err), { cause: err })
        emit('error', lastError)
      }
      if (closing) break
      let open: RawSocket | undefined
      try {
        open = await connectWith(factory, options.url, {
          protocols: ['flumen.v1', ...(token ? [`bearer.${token}`] : [])],
          signal: stopping.signal,
          ...(options.connectTimeoutMs !== undefined && { connectTimeoutMs: options.connectTimeoutMs }),
          ...(options.headers && { headers: options.headers }),
          ...(options.perMessageDeflate !== undefined && { perMessageDeflate: options.perMessageDeflate }),
        })
      } catch (err) {
        lastError = err as FlumenClientError
        // 401/403 at the handshake: only a new token can help.
        if (lastError.status === 401 || lastError.status === 403) {
          nextToken = await newToken(token)
          if (nextToken === undefined) {
            setState('closed', { error: lastError })
            break
          }
        }
        if (closing) break
        setState('reconnecting', { error: lastError })
        await sleep(retryDelayMs(attempt++))
        continue
      }
      if (closing) {
        void open.close()
        break
      }
      currentToken = token
      attempt = 0
      lastError = undefined
      const info = await runConnection(open)
      if (closing) break
      if (info.code === 4001 || info.code === 4003) {
        nextToken = await newToken(token)
        if (nextToken === undefined) {
          setState('closed', { close: info })
          break
        }
      }
      setState('reconnecting', { close: info })
      await sleep(retryDelayMs(attempt++))
    }
    closing = true
    clearTimers()
    for (const queued of offline.splice(0))
      queued.reject(new FlumenClientError('CLOSED', 'The client closed'))
    failPending(new FlumenClientError('CLOSED', 'The client closed'))
    for (const sub of topics.values()) {
      sub.settle?.reject(new FlumenClientError('CLOSED', 'The client closed'))
      sub.settle = undefined
    }
    if ((state as ClientState) !== 'closed') setState('closed')
  })()

  const client: Client = {
    get state() {
      return state
    },
    subscribe(topic, handler, subscribeOptions = {}) {
      if (typeof topic !== 'string' || topic.length === 0)
        throw new Error('subscribe: topic must be a non-empty string')
      if (typeof handler !== 'function') throw new Error('subscribe: handler must be a function')
      let sub = topics.get(topic)
      const typedHandler = handler as (data: unknown, meta: MessageMeta) => void
      if (sub) sub.handlers.add(typedHandler)
      else {
        let settle: TopicState['settle']
        const ready = new Promise<{ recovered: boolean }>((resolve, reject) => {
          settle = { resolve, reject }
        })
        ready.catch(() => {}) // also reported through the caller's await, or 'error'
        const created: TopicState = {
          handlers: new Set([typedHandler]),
          position: subscribeOptions.since,
          members: new Map(),
          live: false,
          ready,
          settle,
          failures: 0,
        }
        sub = created
        topics.set(topic, created)
        if (closing) {
          created.settle?.reject(new FlumenClientError('CLOSED', 'The client closed'))
          created.settle = undefined
        } else if (socket?.isOpen) sendSubscribe(topic, created)
      }
      const current = sub
      return {
        topic,
        ready: current.ready,
        get position() {
          return current.position && { ...current.position }
        },
        async unsubscribe() {
          current.handlers.delete(typedHandler)
          if (current.handlers.size > 0 || topics.get(topic) !== current) return
          topics.delete(topic)
          if (socket?.isOpen && current.live) await request({ type: 'unsubscribe', topic }).catch(() => {})
        },
      }
    },
    async publish(topic, data, publishOptions = {}) {
      const message = { type: 'publish', topic, data, ...(publishOptions.echo && { echo: true }) }
      const timeoutMs = publishOptions.timeoutMs ?? requestTimeoutMs
      if (closing) throw new FlumenClientError('CLOSED', 'The client closed')
      if (socket?.isOpen && offline.length === 0) return Number((await request(message, timeoutMs)).offset)
      if (offline.length >= maxOfflineQueue)
        throw new FlumenClientError(
          'OFFLINE_QUEUE_FULL',
          `More than ${maxOfflineQueue} publishes waiting to be sent`,
        )
      const ack = await new Promise<Record<string, unknown>>((resolve, reject) => {
        offline.push({ message, timeoutMs, resolve, reject })
      })
      return Number(ack.offset)
    },
    async call(method, data, callOptions = {}) {
      if (closing) throw new FlumenClientError('CLOSED', 'The client closed')
      const result = await request(
        { type: 'call', method, ...(data !== undefined && { data }) },
        callOptions.timeoutMs,
      )
      return result.data as never
    },
    presence(topic) {
      return [...(topics.get(topic)?.members.values() ?? [])]
    },
    on(event, listener) {
      listeners[event].add(listener)
      return () => {
        listeners[event].delete(listener)
      }
    },
    async close() {
      if (!closing) {
        closing = true
        stopping.abort()
        wake?.()
        void socket?.close(1000, 'Client closed')
      }
      await loop
    },
  }
  return client
}
