export type { FlumenMetrics, MetricsOptions } from './metrics.js'
export { defaultBuckets, flumenMetrics } from './metrics.js'
export type {
  HubEvents,
  HubSource,
  SseRouteSource,
  UploadRouteSource,
  WebSocketRouteSource,
} from './sources.js'
export type { FlumenTracing, TracingOptions } from './tracing.js'
export { flumenTracing } from './tracing.js'
