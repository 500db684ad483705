// Metrics read from the counters the packages keep anyway, at scrape time: nothing is added to a
// message's path. Counters are set to the source's running total at each scrape.
import type { LabelValues, Registry } from 'prom-client'
import { Counter, Gauge } from 'prom-client'
import type { HubSource, SseRouteSource, UploadRouteSource, WebSocketRouteSource } from './sources.js'

type Sample<L extends string> = readonly [labels: LabelValues<L>, value: number]

export interface StatSources {
  readonly hub: HubSource | undefined
  readonly websocket: Readonly<Record<string, WebSocketRouteSource>>
  readonly sse: Readonly<Record<string, SseRouteSource>>
  readonly uploads: Readonly<Record<string, UploadRouteSource>>
}

/** Registers the scrape-time metrics; returns their names. */
export const registerStatMetrics = (registry: Registry, prefix: string, sources: StatSources): string[] => {
  const names: string[] = []
  const metric = <L extends string>(
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: readonly L[],
    samples: () => Iterable<Sample<L>>,
  ): void => {
    const fullName = `${prefix}${name}`
    names.push(fullName)
    if (kind === 'gauge')
      new Gauge<L>({
        name: fullName,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          for (const [labels, value] of samples()) this.set(labels, value)
        },
      })
    else
      new Counter<L>({
        name: fullName,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          for (const [labels, value] of samples()) this.inc(labels, value)
        },
      })
  }

  const { hub, websocket, sse, uploads } = sources
  const ws = Object.entries(websocket)
  const streams = Object.entries(sse)
  /** One sample per route of both transports, read by `read`. */
  const perRoute =
    (
      read: (stats: WebSocketRouteSource['stats'] | SseRouteSource['stats']) => number,
    ): (() => Sample<'transport' | 'route'>[]) =>
    () => [
      ...ws.map(([route, source]) => [{ transport: 'ws', route }, read(source.stats)] as const),
      ...streams.map(([route, source]) => [{ transport: 'sse', route }, read(source.stats)] as const),
    ]
  const transportLabels = ['transport', 'route'] as const

  type Kind = 'counter' | 'gauge'
  type Row<S> = readonly [kind: Kind, name: string, help: string, read: (stats: S) => number]
  const bothTransports: Row<WebSocketRouteSource['stats'] | SseRouteSource['stats']>[] = [
    ['gauge', 'connections', 'Open connections', (s) => s.connections],
    [
      'counter',
      'frames_sent_total',
      'Frames written to connections (a batch of messages is one)',
      (s) => s.sent,
    ],
    [
      'counter',
      'slow_consumer_closes_total',
      'Connections closed because their send buffer went over its limit',
      (s) => s.slowConsumers,
    ],
    [
      'counter',
      'dropped_frames_total',
      'Volatile frames not written to a connection that was behind',
      (s) => s.dropped,
    ],
  ]
  const websocketOnly: Row<WebSocketRouteSource['stats']>[] = [
    ['counter', 'messages_received_total', 'Messages received from connections', (s) => s.received],
    [
      'counter',
      'rate_limited_messages_total',
      'Messages dropped by the per-connection rate limit',
      (s) => s.rateLimited,
    ],
    [
      'counter',
      'heartbeat_timeouts_total',
      'Connections cut because they did not answer a ping in time',
      (s) => s.heartbeatTimeouts,
    ],
  ]
  const hubRows: Row<HubSource['stats']>[] = [
    ['gauge', 'hub_connections', 'Connections attached to the hub (WebSocket and SSE)', (s) => s.peers],
    ['gauge', 'hub_topics', 'Topics with subscribers on this node', (s) => s.topics],
    ['gauge', 'hub_subscriptions', 'Subscriptions of this node’s connections', (s) => s.subscriptions],
    [
      'gauge',
      'hub_presence_members',
      'Connections present in the topics this node reads (all nodes)',
      (s) => s.presenceMembers,
    ],
    [
      'counter',
      'hub_published_messages_total',
      'Messages published through this hub (clients and server)',
      (s) => s.published,
    ],
    ['counter', 'hub_deliveries_total', 'Messages (and replies) written to connections', (s) => s.delivered],
    [
      'counter',
      'hub_dropped_messages_total',
      'Volatile messages a connection missed because it was behind',
      (s) => s.dropped,
    ],
  ]
  const uploadRows: Row<UploadRouteSource['stats']>[] = [
    ['gauge', 'uploads_active', 'Uploads being received', (s) => s.active],
    ['counter', 'upload_bytes_total', 'File bytes stored by completed uploads', (s) => s.bytes],
  ]

  if (ws.length + streams.length > 0)
    for (const [kind, name, help, read] of bothTransports)
      metric(kind, name, help, transportLabels, perRoute(read))
  for (const [kind, name, help, read] of ws.length > 0 ? websocketOnly : [])
    metric(kind, name, help, transportLabels, () =>
      ws.map(([route, source]) => [{ transport: 'ws', route }, read(source.stats)] as const),
    )
  for (const [kind, name, help, read] of hub ? hubRows : [])
    metric(kind, name, help, [], () => [[{}, read(hub!.stats)] as const])
  if (hub)
    metric(
      'gauge',
      'engine_available',
      'Whether the engine can take publishes now (0 while Redis is down)',
      [],
      () => [[{}, hub.engine.available === false ? 0 : 1] as const],
    )

  const uploadRoutes = Object.entries(uploads)
  if (uploadRoutes.length > 0) {
    for (const [kind, name, help, read] of uploadRows)
      metric(kind, name, help, ['route'], () =>
        uploadRoutes.map(([route, source]) => [{ route }, read(source.stats)] as const),
      )
    metric('counter', 'uploads_total', 'Uploads ended, by result', ['route', 'result'], () =>
      uploadRoutes.flatMap(([route, source]) => [
        [{ route, result: 'completed' }, source.stats.completed] as const,
        [{ route, result: 'failed' }, source.stats.failed] as const,
      ]),
    )
  }
  return names
}
