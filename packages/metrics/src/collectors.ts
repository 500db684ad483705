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

  if (ws.length + streams.length > 0) {
    metric(
      'gauge',
      'connections',
      'Open connections',
      transportLabels,
      perRoute((s) => s.connections),
    )
    metric(
      'counter',
      'frames_sent_total',
      'Frames written to connections (a batch of messages is one)',
      transportLabels,
      perRoute((s) => s.sent),
    )
    metric(
      'counter',
      'slow_consumer_closes_total',
      'Connections closed because their send buffer went over its limit',
      transportLabels,
      perRoute((s) => s.slowConsumers),
    )
    metric(
      'counter',
      'dropped_frames_total',
      'Volatile frames not written to a connection that was behind',
      transportLabels,
      perRoute((s) => s.dropped),
    )
  }
  if (ws.length > 0) {
    const wsRoutes =
      (read: (stats: WebSocketRouteSource['stats']) => number) => (): Sample<'transport' | 'route'>[] =>
        ws.map(([route, source]) => [{ transport: 'ws', route }, read(source.stats)] as const)
    metric(
      'counter',
      'messages_received_total',
      'Messages received from connections',
      transportLabels,
      wsRoutes((s) => s.received),
    )
    metric(
      'counter',
      'rate_limited_messages_total',
      'Messages dropped by the per-connection rate limit',
      transportLabels,
      wsRoutes((s) => s.rateLimited),
    )
    metric(
      'counter',
      'heartbeat_timeouts_total',
      'Connections cut because they did not answer a ping in time',
      transportLabels,
      wsRoutes((s) => s.heartbeatTimeouts),
    )
  }

  if (hub) {
    const stats = hub.stats
    const single = (read: () => number) => (): Sample<never>[] => [[{}, read()]]
    metric(
      'gauge',
      'hub_connections',
      'Connections attached to the hub (WebSocket and SSE)',
      [],
      single(() => stats.peers),
    )
    metric(
      'gauge',
      'hub_topics',
      'Topics with subscribers on this node',
      [],
      single(() => stats.topics),
    )
    metric(
      'gauge',
      'hub_subscriptions',
      'Subscriptions of this node’s connections',
      [],
      single(() => stats.subscriptions),
    )
    metric(
      'gauge',
      'hub_presence_members',
      'Connections present in the topics this node reads (all nodes)',
      [],
      single(() => stats.presenceMembers),
    )
    metric(
      'counter',
      'hub_published_messages_total',
      'Messages published through this hub (clients and server)',
      [],
      single(() => stats.published),
    )
    metric(
      'counter',
      'hub_deliveries_total',
      'Messages (and replies) written to connections',
      [],
      single(() => stats.delivered),
    )
    metric(
      'counter',
      'hub_dropped_messages_total',
      'Volatile messages a connection missed because it was behind',
      [],
      single(() => stats.dropped),
    )
  }

  const uploadRoutes = Object.entries(uploads)
  if (uploadRoutes.length > 0) {
    const perUpload = (read: (stats: UploadRouteSource['stats']) => number) => (): Sample<'route'>[] =>
      uploadRoutes.map(([route, source]) => [{ route }, read(source.stats)] as const)
    metric(
      'gauge',
      'uploads_active',
      'Uploads being received',
      ['route'],
      perUpload((s) => s.active),
    )
    metric('counter', 'uploads_total', 'Uploads ended, by result', ['route', 'result'], () =>
      uploadRoutes.flatMap(([route, source]) => [
        [{ route, result: 'completed' }, source.stats.completed] as const,
        [{ route, result: 'failed' }, source.stats.failed] as const,
      ]),
    )
    metric(
      'counter',
      'upload_bytes_total',
      'File bytes stored by completed uploads',
      ['route'],
      perUpload((s) => s.bytes),
    )
  }
  return names
}
