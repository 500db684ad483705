// The channel client (protocol v1): one connection at a time, reconnected with backoff; what it
// carries is in requests.ts (answers, publishes), subscriptions.ts (topics, presence),
// keep-alive.ts and token.ts.

import type { AnyContract } from '@flumen/contract'
import { fullJitter } from './backoff.js'
import type {
  Client,
  ClientBase,
  ClientEvents,
  ClientOptions,
  ClientState,
  PublishCallOptions,
  UntypedClientMethods,
  VolatilePublishOptions,
} from './client-types.js'
import { ContractChecks } from './contract-checks.js'
import { Emitter } from './emitter.js'
import { FlumenClientError } from './errors.js'
import { keepAliveDefaults, watchConnection } from './keep-alive.js'
import type { ServerMessage } from './protocol.js'
import { protocolName, publishKey, serverError } from './protocol.js'
import { Requests } from './requests.js'
import type { CloseInfo, RawSocket, SocketFactory } from './socket.js'
import { connectWith } from './socket.js'
import type { MessageMeta } from './subscriptions.js'
import { Subscriptions } from './subscriptions.js'
import { jwtExpiry, resolveToken } from './token.js'

export type {
  Client,
  ClientEvents,
  ClientOptions,
  ClientState,
  PublishCallOptions,
  TypedClientMethods,
  UntypedClientMethods,
  VolatilePublishOptions,
} from './client-types.js'
export type { KeepAliveOptions } from './keep-alive.js'
export type {
  MessageMeta,
  StoredMessageMeta,
  SubscribeOptions,
  Subscription,
  VolatileMessageMeta,
} from './subscriptions.js'
export type { TokenSource } from './token.js'

/**
 * The channel client (protocol `flumen.v1`): subscriptions that survive reconnects and recover
 * what they missed, acknowledged publishes sent once, RPC, presence, token refresh.
 */
export const createClientWith = <C extends AnyContract | undefined = undefined>(
  factory: SocketFactory,
  options: ClientOptions<C>,
): Client<C> => {
  if (typeof options?.url !== 'string' || !/^wss?:\/\//.test(options.url))
    throw new Error('createClient: url must be a ws:// or wss:// URL')
  const retryDelayMs = options.retryDelayMs ?? fullJitter()
  const keepAlive = options.keepAlive === false ? undefined : { ...keepAliveDefaults, ...options.keepAlive }
  const refreshBeforeExpiryMs = options.refreshBeforeExpiryMs ?? 30_000
  const tokenSource = options.token

  let state: ClientState = 'connecting'
  let socket: RawSocket | undefined
  let closing = false
  let currentToken: string | undefined
  const events = new Emitter<ClientEvents>()
  const requests = new Requests(options.requestTimeoutMs ?? 10_000, options.maxOfflineQueue ?? 1000)
  /** Timers of the current connection, and the wait between connections. */
  const timers = new Set<ReturnType<typeof setTimeout>>()
  let wake: (() => void) | undefined
  /** Cancels a connect in progress when the client closes. */
  const stopping = new AbortController()

  const setState = (
    next: ClientState,
    detail: { close?: CloseInfo; error?: FlumenClientError } = {},
  ): void => {
    if (state === next && !detail.close && !detail.error) return
    state = next
    events.emit('state', next, detail)
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

  if (options.contract !== undefined && typeof options.contract?.match !== 'function')
    throw new Error('createClient: contract must come from defineContract()')
  const checks = new ContractChecks(options.contract, (error) => events.emit('error', error))
  const subscriptions = new Subscriptions({
    requests,
    checks,
    events,
    retryDelayMs,
    later,
    isOpen: () => socket?.isOpen === true,
    dropConnection: (reason) => void socket?.close(4000, reason),
  })

  const onServerMessage = (raw: string): void => {
    let message: ServerMessage
    try {
      message = JSON.parse(raw) as ServerMessage
    } catch {
      events.emit('error', new FlumenClientError('PROTOCOL_ERROR', 'The server sent malformed JSON'))
      return
    }
    switch (message.type) {
      case 'message':
        subscriptions.onMessage(message)
        return
      case 'ack':
      case 'result':
      case 'error':
        if (!requests.answer(message) && message.type === 'error') events.emit('error', serverError(message))
        return
      case 'presence':
        subscriptions.onPresence(message)
        return
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
        const fresh = await resolveToken(tokenSource)
        if (!fresh || !socket?.isOpen) return
        await requests.request({ type: 'auth', token: fresh })
        currentToken = fresh
        scheduleRefresh()
      } catch (err) {
        events.emit(
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
    // Resubscribe (recovering from the last positions), then send what waited for a connection.
    requests.connected(open)
    subscriptions.resubscribe()
    requests.flushOutbox()
    setState('open')
    scheduleRefresh()
    if (keepAlive)
      watchConnection(keepAlive, {
        lastReceivedAt: () => lastReceivedAt,
        ping: () => {
          try {
            open.send('{"type":"ping"}')
            return true
          } catch {
            return false
          }
        },
        dead: () => {
          open.close(4000, 'No pong')
          dead?.({ code: 4000, reason: 'No pong', clean: false })
        },
        later,
      })
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
    requests.disconnected(
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
    const fresh = await resolveToken(tokenSource).catch(() => undefined)
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
        token ??= await resolveToken(tokenSource)
      } catch (err) {
        lastError = new FlumenClientError('TOKEN_ERROR', String(err), { cause: err })
        events.emit('error', lastError)
      }
      if (closing) break
      let open: RawSocket | undefined
      try {
        open = await connectWith(factory, options.url, {
          protocols: [protocolName, ...(token ? [`bearer.${token}`] : [])],
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
    requests.close(new FlumenClientError('CLOSED', 'The client closed'))
    subscriptions.close()
    if ((state as ClientState) !== 'closed') setState('closed')
  })()

  const publish = async (
    topic: string,
    data: unknown,
    publishOptions: PublishCallOptions | VolatilePublishOptions = {},
  ): Promise<number | boolean> => {
    if (closing) throw new FlumenClientError('CLOSED', 'The client closed')
    const message = { type: 'publish', topic, data, ...(publishOptions.echo && { echo: true }) }
    if (publishOptions.volatile === true) return requests.sendNow({ ...message, volatile: true })
    return Number(
      (await requests.publish({ ...message, key: publishKey() }, publishOptions.timeoutMs)).offset,
    )
  }

  const client: ClientBase & UntypedClientMethods = {
    get state() {
      return state
    },
    subscribe(topic, handler, subscribeOptions = {}) {
      if (typeof topic !== 'string' || topic.length === 0)
        throw new Error('subscribe: topic must be a non-empty string')
      if (typeof handler !== 'function') throw new Error('subscribe: handler must be a function')
      return subscriptions.add(topic, handler as (data: unknown, meta: MessageMeta) => void, subscribeOptions)
    },
    // One implementation of both overloads: a volatile publish answers whether it went out.
    publish: publish as UntypedClientMethods['publish'],
    async call(method, data, callOptions = {}) {
      if (closing) throw new FlumenClientError('CLOSED', 'The client closed')
      const result = await requests.request(
        { type: 'call', method, ...(data !== undefined && { data }) },
        callOptions.timeoutMs,
      )
      return checks.result(method, result.data) as never
    },
    presence: (topic) => subscriptions.members(topic),
    on: (event, listener) => events.on(event, listener),
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
  // One implementation for both shapes: a contract changes the types, the checks run inside.
  return client as Client<C>
}
