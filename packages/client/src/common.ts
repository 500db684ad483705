// What the browser and Node builds export alike; each adds its WebSocket and upload bindings.
export type { BackoffOptions } from './backoff.js'
export { fullJitter } from './backoff.js'
export type {
  Client,
  ClientEvents,
  ClientOptions,
  ClientState,
  KeepAliveOptions,
  MessageMeta,
  PublishCallOptions,
  StoredMessageMeta,
  SubscribeOptions,
  Subscription,
  TokenSource,
  TypedClientMethods,
  UntypedClientMethods,
  VolatileMessageMeta,
  VolatilePublishOptions,
} from './channel.js'
export type { ClientErrorCode, ClientErrorOptions } from './errors.js'
export { FlumenClientError } from './errors.js'
export type {
  ResumableFile,
  ResumableUploadOptions,
  ResumableUploadResult,
  ResumeStore,
} from './resumable.js'
export type { CloseInfo, ConnectOptions, RawSocket, SocketMessage, WebSocketLike } from './socket.js'
export type { EventStream, EventStreamOptions, StreamEvent } from './sse.js'
export { openEventStream } from './sse.js'
