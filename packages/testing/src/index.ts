export { chromiumPath, launchChromium, requireChromium } from './chromium.js'
export type { ClientOutcome, ClientReply, FetchBody, FetchRequest } from './clients.js'
export { curl, fetchOutOfProcess } from './clients.js'
export type { EngineHarness } from './engine-conformance.js'
export { describeEngineConformance } from './engine-conformance.js'
export type { LeakCheck, LeakCheckOptions, LeakSnapshot } from './leaks.js'
export { leakCheck } from './leaks.js'
export type { ForkedServer } from './process.js'
export { forkServer } from './process.js'
export type { ProtocolClient } from './protocol-client.js'
export { openProtocolClient } from './protocol-client.js'
export type { RedisCluster, RedisServer, RedisServerOptions, SentinelSetup } from './redis.js'
export {
  freePort,
  pingRedis,
  requireRedis,
  sharedRedisUrl,
  startRedis,
  startRedisCluster,
  startSentinel,
  uniquePrefix,
} from './redis.js'
export type { Registry } from './registry.js'
export { startRegistry } from './registry.js'
export type { ReceivedEvent, TestSseClient } from './sse-client.js'
export { openSse } from './sse-client.js'
export type {
  ConformanceClient,
  ConformanceHooks,
  ConformanceServer,
  TransportHarness,
} from './transport-conformance.js'
export { describeTransportConformance } from './transport-conformance.js'
export type { RefusedUpgrade } from './upgrade.js'
export { refusedUpgrade } from './upgrade.js'
export { waitFor } from './wait.js'
