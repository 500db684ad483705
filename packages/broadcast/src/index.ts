export type { StandardSchemaV1 } from '@flumen/contract'
export { createDelta } from './delta.js'
export type {
  Engine,
  EngineListener,
  EngineMessage,
  EnginePublishOptions,
  HistoryOptions,
  HistoryResult,
  PresenceChange,
  PresenceMember,
  StreamPosition,
  VolatileMessage,
} from './engine.js'
export { dedupeDefaults, historyDefaults, resolveHistory } from './engine.js'
export type {
  AuthorizeRequest,
  Authorizer,
  CallContext,
  Hub,
  HubAction,
  HubMessage,
  HubOptions,
  HubStats,
  HubTopic,
  MethodOptions,
  PresenceIdentity,
  PresenceStats,
  PublishOptions,
  PublishRequest,
} from './hub.js'
export { createHub } from './hub.js'
export type { ConnectionInfo, HubSnapshot, TopicInfo } from './inspection.js'
export type { Listening, TopicListener } from './listen.js'
export { LocalPresence } from './local-presence.js'
export { localVolatile } from './local-volatile.js'
export type { MemoryEngine, MemoryEngineOptions, MemoryEngineStats } from './memory-engine.js'
export { memoryEngine, memoryEngineDefaults } from './memory-engine.js'
export type { CallEvent, HubObserver, HubOperation, PublishEvent, WriteEvent } from './observers.js'
export { messageEnvelope, protocolName } from './protocol.js'
export { recentMessages } from './recent.js'
export { recoveryOf } from './recovery.js'
