// App-level keep-alive: browsers cannot see protocol pings, so the client pings when the server
// has been silent, and drops a connection that does not answer.

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

export const keepAliveDefaults: Required<KeepAliveOptions> = { intervalMs: 25_000, pongTimeoutMs: 10_000 }

export interface KeepAliveConnection {
  /** When the last message of the server arrived (ms since the epoch). */
  lastReceivedAt(): number
  /** Sends `{"type":"ping"}`; false when the socket is gone. */
  ping(): boolean
  /** Drops the connection: it stopped answering. */
  dead(): void
  /** Runs `run` after `ms` unless the connection ends first. */
  later(ms: number, run: () => void): void
}

/**
 * Watches one connection. Timers in background tabs fire late: liveness is judged by what arrived,
 * and a pong has its full timeout from the moment the ping actually went out.
 */
export const watchConnection = (
  options: Required<KeepAliveOptions>,
  connection: KeepAliveConnection,
): void => {
  const check = (): void => {
    const idle = Date.now() - connection.lastReceivedAt()
    if (idle < options.intervalMs) {
      connection.later(options.intervalMs - idle, check)
      return
    }
    const pingAt = Date.now()
    if (!connection.ping()) return
    connection.later(options.pongTimeoutMs, () => {
      if (connection.lastReceivedAt() >= pingAt) check()
      else connection.dead()
    })
  }
  connection.later(options.intervalMs, check)
}
