export type { FlumenMetrics, MetricsOptions } from './metrics.js'
export { defaultBuckets, flumenMetrics } from './metrics.js'
export type {
  HubEvents,
  HubSource,
  SseRouteSource,
  UploadRouteSource,
  WebSocketRouteSource,
} from './sources.js'
