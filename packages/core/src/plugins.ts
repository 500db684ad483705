// The lifecycle contract of a Flumen server: plugins (what drains and stops with it), the server
// handle, and the helpers transports drain their connections with.
import type { Server } from 'node:http'

/**
 * A participant in the server's lifecycle: transports, the hub, upload handlers and app code
 * that owns resources. Every hook may be async; a hook that throws is logged and the
 * shutdown goes on.
 */
export interface FlumenPlugin {
  readonly name: string
  /** Called once the server listens (or at registration, on a running server). */
  start?(server: FlumenServer): void | Promise<void>
  /**
   * Called when `close()` begins: stop taking new work and finish what runs (send 1001, end
   * streams, let uploads complete). `signal` aborts at the deadline: stop waiting then.
   */
  drain?(signal: AbortSignal): void | Promise<void>
  /** Called after every drain settled or the deadline passed: release everything left. */
  stop?(): void | Promise<void>
}

export type ServerState = 'listening' | 'draining' | 'closed'

/** The handle of a running server (also in every request's `c.env.flumen`). */
export interface FlumenServer {
  readonly port: number
  /** `http://host:port/`, with `localhost` for a wildcard host. */
  readonly url: string
  readonly state: ServerState
  /** The Node server underneath, for what Flumen does not wrap. */
  readonly node: Server
  /** Adds a lifecycle participant (once per object); returns a function that removes it. */
  register(plugin: FlumenPlugin): () => void
  /**
   * Graceful close: stop accepting, let plugins drain and in-flight requests finish, and at
   * the deadline destroy whatever is left. Calling it again returns the same promise.
   */
  close(options?: CloseOptions): Promise<void>
}

export interface CloseOptions {
  /**
   * How long draining may take before connections are destroyed.
   * @default 10_000
   */
  timeoutMs?: number
}

/** What `serve()` needs of an app: a Hono app built with `createApp()` fits. */
/**
 * The answer of a route that wrote its response straight to `c.env.outgoing` (SSE streams):
 * @hono/node-server then leaves the Node response alone. Its lightweight Response keeps a cache
 * (an own symbol property) that would bypass that check, so the cache is dropped here.
 */
export const responseAlreadySent = (): Response => {
  const response = new Response(null, { headers: { 'x-hono-already-sent': '1' } })
  for (const symbol of Object.getOwnPropertySymbols(response)) Reflect.deleteProperty(response, symbol)
  return response
}

/**
 * A transport's drain hook: asks every connection to close, waits until the set is empty or the
 * server's drain deadline passes (checking every 10 ms), then forces whatever is left.
 */
export const drainConnections = async <T>(
  connections: ReadonlySet<T>,
  signal: AbortSignal,
  close: (connection: T) => void,
  force: (connection: T) => void,
): Promise<void> => {
  for (const connection of connections) close(connection)
  while (connections.size > 0 && !signal.aborted) await new Promise((resolve) => setTimeout(resolve, 10))
  for (const connection of [...connections]) force(connection)
}
