export type { ClientOutcome, ClientReply, FetchBody, FetchRequest } from './clients.js'
export { curl, fetchOutOfProcess } from './clients.js'
export type { LeakCheck, LeakCheckOptions, LeakSnapshot } from './leaks.js'
export { leakCheck } from './leaks.js'
export type { ForkedServer } from './process.js'
export { forkServer } from './process.js'
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
export type { RefusedUpgrade } from './upgrade.js'
export { refusedUpgrade } from './upgrade.js'
export { waitFor } from './wait.js'
