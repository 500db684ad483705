// What the metrics read, described by shape: a route or hub of any Flumen version that has these
// counters fits, and this package depends on none of them.

/** A WebSocket route (`upgradeWebSocket()` of @flumen/ws, `hub.websocket()`). */
export interface WebSocketRouteSource {
  readonly stats: {
    readonly connections: number
    readonly received: number
    readonly sent: number
    readonly dropped: number
    readonly slowConsumers: number
    readonly rateLimited: number
    readonly heartbeatTimeouts: number
  }
}

/** An SSE route (`sse()` of @flumen/sse, `hub.sse()`). */
export interface SseRouteSource {
  readonly stats: {
    readonly connections: number
    readonly sent: number
    readonly dropped: number
    readonly slowConsumers: number
  }
}

/** An upload route (`uploads()` or `tus()` of @flumen/uploads). */
export interface UploadRouteSource {
  readonly stats: {
    readonly active: number
    readonly completed: number
    readonly failed: number
    readonly bytes: number
  }
}

/** What a hub tells its observers (see `hub.observe` in @flumen/broadcast). */
export interface HubEvents {
  onPublish?(event: {
    readonly topic: string
    readonly offset?: number
    readonly source: 'client' | 'server'
    readonly volatile: boolean
    readonly durationMs: number
    readonly error?: unknown
  }): void
  onCall?(event: { readonly method: string; readonly durationMs: number; readonly error?: unknown }): void
  onWrite?(event: {
    readonly topic: string
    readonly messages: number
    readonly peers: number
    readonly delayMs: number
  }): void
  around?<T>(
    operation:
      | {
          readonly kind: 'publish'
          readonly topic: string
          readonly source: 'client' | 'server'
          readonly volatile: boolean
        }
      | { readonly kind: 'call'; readonly method: string },
    run: () => Promise<T>,
  ): Promise<T>
}

/** A broadcast hub (`createHub()` of @flumen/broadcast). */
export interface HubSource {
  readonly stats: {
    readonly peers: number
    readonly topics: number
    readonly subscriptions: number
    readonly presenceMembers: number
    readonly published: number
    readonly delivered: number
    readonly dropped: number
  }
  /** The hub's engine: `available` false while it cannot take publishes (Redis down). */
  readonly engine: { readonly available?: boolean }
  observe(observer: HubEvents): () => void
}
