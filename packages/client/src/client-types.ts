// The channel client's public shape: its options, states, events and methods (typed by a contract
// when it has one).
import type {
  AnyContract,
  MessageOf,
  MethodInputOf,
  MethodName,
  MethodOutputOf,
  PresenceOf,
  PublishInputOf,
  TopicName,
} from '@flumen/contract'
import type { FlumenClientError } from './errors.js'
import type { KeepAliveOptions } from './keep-alive.js'
import type { CloseInfo } from './socket.js'
import type { MessageMeta, SubscribeOptions, Subscription } from './subscriptions.js'
import type { TokenSource } from './token.js'

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ClientOptions<C extends AnyContract | undefined = undefined> {
  /** `ws://` or `wss://` URL of a `hub.websocket()` route. */
  url: string
  /**
   * The app's contract (`defineContract`, shared with the server): `subscribe`, `publish`, `call`
   * and `presence` are typed from it, and every message, member and result is checked against it
   * before the app sees it (what breaks it is an `error` event or rejection, `INVALID_MESSAGE`).
   * @default none (data unchecked, typed by the caller)
   */
  contract?: C
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
   * How long publish, subscribe and call wait for their answer once sent.
   * @default 10000
   */
  requestTimeoutMs?: number
  /**
   * Publishes waiting for a connection (sent while offline, or in flight when it dropped: they go
   * out again with the same idempotency key, and the server stores each once); more reject with
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

export interface PublishCallOptions {
  timeoutMs?: number
  volatile?: false
  /** Receive this publish as well (the server echoes it). */
  echo?: boolean
}

export interface VolatilePublishOptions {
  /**
   * Send it to who is subscribed and keeping up now, stored nowhere (typing indicators, progress,
   * cursors): no offset, no recovery, never queued. Resolves false when it was not sent (no open
   * connection); a refusal by the server comes as an `error` event.
   */
  volatile: true
  /** Receive this publish as well (the server echoes it). */
  echo?: boolean
}

export interface ClientBase {
  readonly state: ClientState
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void
  /** Closes for good: no reconnect, every timer cleared, pending operations rejected with CLOSED. */
  close(): Promise<void>
}

/** Without a contract: any topic and method, data typed by the caller. */
export interface UntypedClientMethods {
  subscribe<T = unknown>(
    topic: string,
    handler: (data: T, meta: MessageMeta) => void,
    options?: SubscribeOptions,
  ): Subscription
  /**
   * Resolves with the message's offset once the server stored it. Queued while offline, and sent
   * again after a reconnect if the answer was lost: the server stores it once.
   */
  publish(topic: string, data: unknown, options?: PublishCallOptions): Promise<number>
  /** A volatile publish: true once written to the open connection, false when there is none. */
  publish(topic: string, data: unknown, options: VolatilePublishOptions): Promise<boolean>
  call<R = unknown>(method: string, data?: unknown, options?: { timeoutMs?: number }): Promise<R>
  /** The users present in a subscribed topic, as last reported. */
  presence(topic: string): unknown[]
}

/** With a contract: its topics (patterns give template literals: `room:${id}`) and methods. */
export interface TypedClientMethods<C extends AnyContract> {
  /** `data` is the topic's message, checked and as its schema outputs it. */
  subscribe<T extends TopicName<C>>(
    topic: T,
    handler: (data: MessageOf<C, T>, meta: MessageMeta) => void,
    options?: SubscribeOptions,
  ): Subscription
  /** As without a contract; `data` is what the topic's `publish` (or `message`) schema takes. */
  publish<T extends TopicName<C>>(
    topic: T,
    data: PublishInputOf<C, T>,
    options?: PublishCallOptions,
  ): Promise<number>
  publish<T extends TopicName<C>>(
    topic: T,
    data: PublishInputOf<C, T>,
    options: VolatilePublishOptions,
  ): Promise<boolean>
  /** Resolves with the method's result, checked and as its output schema makes it. */
  call<N extends MethodName<C>>(
    method: N,
    data: MethodInputOf<C, N>,
    options?: { timeoutMs?: number },
  ): Promise<MethodOutputOf<C, N>>
  presence<T extends TopicName<C>>(topic: T): PresenceOf<C, T>[]
}

export type Client<C extends AnyContract | undefined = undefined> = ClientBase &
  (C extends AnyContract ? TypedClientMethods<C> : UntypedClientMethods)
