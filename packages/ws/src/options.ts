import type { AllowedOrigins, ConnectionLimitOptions } from '@flumen/core'
import { originAllowList, positiveInteger, positiveNumber } from '@flumen/core'

/**
 * Per-route options of `upgradeWebSocket`. Every limit has a default; `false` turns a guard off.
 * Connection limits (`maxConnections` 10,000 → 503, `maxConnectionsPerIp` 1,000 and
 * `maxConnectionsPerUser` 32 → 429, `clientIp`) are core's `ConnectionLimitOptions`.
 */
export interface WebSocketOptions extends ConnectionLimitOptions {
  /**
   * Largest message accepted, in bytes; a bigger one closes the socket with 1009.
   * @default 1_048_576 (1 MiB)
   */
  maxPayload?: number
  /**
   * permessage-deflate, off by default (it costs CPU). `true` compresses messages of at least 1 KiB;
   * `{ threshold }` sets that size. Negotiated without server context takeover: each message is
   * compressed on its own, so a prepared frame (a hub message) is compressed once and the same bytes
   * go to every peer that accepted the full window (others are compressed by `ws` per connection).
   * @default false
   */
  perMessageDeflate?: boolean | { threshold?: number }
  /**
   * Subprotocols this route speaks, in order of preference (e.g. `['flumen.v1']`). The first one the
   * client offers is selected; `bearer.*` token protocols are never echoed.
   * @default [] (no subprotocol selected)
   */
  protocols?: readonly string[]
  /**
   * Origins allowed to open a socket (Cross-Site WebSocket Hijacking guard): exact origins such as
   * `https://app.example`, or a function. A request whose `Origin` is not allowed gets 403 and no
   * upgrade; requests without `Origin` (non-browser clients) pass.
   * @default undefined (every origin)
   */
  allowedOrigins?: AllowedOrigins
  /**
   * Protocol-level pings: every `intervalMs` each socket is pinged and one that has not answered
   * within `pongTimeoutMs` is terminated.
   * @default { intervalMs: 30_000, pongTimeoutMs: 10_000 }
   */
  heartbeat?: { intervalMs?: number; pongTimeoutMs?: number } | false
  /**
   * Bytes queued for one peer before it counts as a slow consumer: it is closed with 4008, or a
   * frame marked `volatile` is dropped (and counted in `stats.dropped`).
   * @default 1_048_576 (1 MiB)
   */
  maxBufferedBytes?: number
  /**
   * Inbound messages per second per socket (token bucket of `burst`). Every message over the limit
   * is dropped and answered: by the route's `onRateLimited` (the hub answers
   * `{"type":"error","id":…,"code":"RATE_LIMITED"}` with the message's id), else with
   * `{"type":"error","code":"RATE_LIMITED"}`. A socket that goes on past `burst` dropped messages
   * in a row is closed with 1008.
   * @default { messagesPerSecond: 100, burst: 200 }
   */
  rateLimit?: { messagesPerSecond?: number; burst?: number } | false
}

export interface ResolvedOptions {
  maxPayload: number
  deflateThreshold: number | false
  protocols: readonly string[]
  isOriginAllowed: ((origin: string) => boolean) | undefined
  heartbeat: { intervalMs: number; pongTimeoutMs: number } | false
  maxBufferedBytes: number
  rateLimit: { messagesPerSecond: number; burst: number } | false
}

export const defaults = {
  maxPayload: 1_048_576,
  deflateThreshold: 1024,
  intervalMs: 30_000,
  pongTimeoutMs: 10_000,
  maxBufferedBytes: 1_048_576,
  messagesPerSecond: 100,
  burst: 200,
} as const

const originGuard = (allowed: WebSocketOptions['allowedOrigins']): ResolvedOptions['isOriginAllowed'] =>
  allowed === undefined ? undefined : originAllowList('upgradeWebSocket', allowed)

/** Checks options up front and fills in the defaults. */
export const resolveOptions = (options: WebSocketOptions): ResolvedOptions => {
  const deflate = options.perMessageDeflate ?? false
  const heartbeat = options.heartbeat ?? {}
  const rateLimit = options.rateLimit ?? {}
  const protocols = options.protocols ?? []
  if (
    !Array.isArray(protocols) ||
    protocols.some((p) => typeof p !== 'string' || !/^[!#-'*+.0-9A-Z^-z|~-]+$/.test(p))
  ) {
    throw new Error('upgradeWebSocket: protocols must be an array of subprotocol tokens')
  }
  return {
    maxPayload: positiveInteger('upgradeWebSocket', 'maxPayload', options.maxPayload ?? defaults.maxPayload),
    deflateThreshold:
      deflate === false
        ? false
        : deflate === true
          ? defaults.deflateThreshold
          : Math.max(0, Math.floor(deflate.threshold ?? defaults.deflateThreshold)),
    protocols,
    isOriginAllowed: originGuard(options.allowedOrigins),
    heartbeat:
      heartbeat === false
        ? false
        : {
            intervalMs: positiveInteger(
              'upgradeWebSocket',
              'heartbeat.intervalMs',
              heartbeat.intervalMs ?? defaults.intervalMs,
            ),
            pongTimeoutMs: positiveInteger(
              'upgradeWebSocket',
              'heartbeat.pongTimeoutMs',
              heartbeat.pongTimeoutMs ?? defaults.pongTimeoutMs,
            ),
          },
    maxBufferedBytes: positiveInteger(
      'upgradeWebSocket',
      'maxBufferedBytes',
      options.maxBufferedBytes ?? defaults.maxBufferedBytes,
    ),
    rateLimit:
      rateLimit === false
        ? false
        : {
            messagesPerSecond: positiveNumber(
              'upgradeWebSocket',
              'rateLimit.messagesPerSecond',
              rateLimit.messagesPerSecond ?? defaults.messagesPerSecond,
            ),
            burst: positiveInteger('upgradeWebSocket', 'rateLimit.burst', rateLimit.burst ?? defaults.burst),
          },
  }
}
