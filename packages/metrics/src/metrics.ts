// flumenMetrics(): every Flumen counter on a prom-client registry, and the handler that serves it.
import type { Handler } from 'hono'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { registerStatMetrics } from './collectors.js'
import { observeHub } from './hub-metrics.js'
import type { HubSource, SseRouteSource, UploadRouteSource, WebSocketRouteSource } from './sources.js'

export interface MetricsOptions {
  /**
   * The registry to register on (the app's own, to serve its metrics beside these).
   * @default a new Registry
   */
  registry?: Registry
  /**
   * Put before every metric name; two `flumenMetrics` on one registry need different prefixes.
   * @default 'flumen_'
   */
  prefix?: string
  /** The broadcast hub: its connections, topics, subscriptions, presence, publishes, calls, writes. */
  hub?: HubSource
  /** WebSocket routes by the `route` label of their metrics, e.g. `{ '/ws': wsRoute }`. */
  websocket?: Readonly<Record<string, WebSocketRouteSource>>
  /** SSE routes by their `route` label. */
  sse?: Readonly<Record<string, SseRouteSource>>
  /** Upload routes (`uploads()`, `tus()`) by their `route` label. */
  uploads?: Readonly<Record<string, UploadRouteSource>>
  /**
   * Upper bounds of the duration histograms' buckets, in seconds.
   * @default [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
   */
  buckets?: readonly number[]
  /**
   * Also register Node's process metrics (CPU, memory, event-loop lag, GC: prom-client's
   * `collectDefaultMetrics`, with the same prefix).
   * @default false
   */
  processMetrics?: boolean
}

export interface FlumenMetrics {
  readonly registry: Registry
  /** A Hono handler answering the registry in Prometheus' text format: `app.get('/metrics', metrics.handler)`. */
  readonly handler: Handler
  /** Stops observing the hub and removes these metrics from the registry. */
  close(): void
}

export const defaultBuckets: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]

const routeTable = <T extends { readonly stats: object }>(
  option: string,
  routes: Readonly<Record<string, T>> | undefined,
): Readonly<Record<string, T>> => {
  if (routes === undefined) return {}
  if (typeof routes !== 'object' || routes === null)
    throw new Error(`flumenMetrics: ${option} must be an object of routes by label`)
  for (const [label, route] of Object.entries(routes)) {
    if (label.length === 0) throw new Error(`flumenMetrics: ${option} has an empty route label`)
    if (typeof route?.stats !== 'object' || route.stats === null)
      throw new Error(`flumenMetrics: ${option}["${label}"] is not a Flumen route (it has no stats)`)
  }
  return routes
}

/**
 * Registers Prometheus metrics for a hub and its routes on a prom-client registry: counters and
 * gauges read from the packages' own counters at scrape time (no cost per message), histograms of
 * engine publish latency, RPC durations and publish-to-write delay from `hub.observe` (one
 * observation per publish, call, and topic write).
 */
export const flumenMetrics = (options: MetricsOptions = {}): FlumenMetrics => {
  const prefix = options.prefix ?? 'flumen_'
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix))
    throw new Error('flumenMetrics: prefix must be a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)')
  const buckets = options.buckets ?? defaultBuckets
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    buckets.some((bound, i) => !(Number.isFinite(bound) && bound > 0 && (i === 0 || bound > buckets[i - 1]!)))
  )
    throw new Error('flumenMetrics: buckets must be increasing positive numbers of seconds')
  const hub = options.hub
  if (hub !== undefined && typeof hub?.observe !== 'function')
    throw new Error('flumenMetrics: hub must come from createHub() of @flumen/broadcast')
  const registry = options.registry ?? new Registry()
  const sources = {
    hub,
    websocket: routeTable('websocket', options.websocket),
    sse: routeTable('sse', options.sse),
    uploads: routeTable('uploads', options.uploads),
  }

  const names = registerStatMetrics(registry, prefix, sources)
  const observed = hub ? observeHub(registry, prefix, hub, buckets) : undefined
  if (observed) names.push(...observed.names)
  if (options.processMetrics) {
    const before = new Set(registry.getMetricsAsArray().map((metric) => metric.name))
    collectDefaultMetrics({ register: registry, prefix })
    for (const metric of registry.getMetricsAsArray()) if (!before.has(metric.name)) names.push(metric.name)
  }

  let closed = false
  return {
    registry,
    handler: async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }),
    close: () => {
      if (closed) return
      closed = true
      observed?.stop()
      for (const name of names) registry.removeSingleMetric(name)
    },
  }
}
