export type { CreateAppOptions, FlumenBindings, FlumenEnv, UpgradeRequest, UserOf } from './app.js'
export { bindingsOf, createApp, idOfUser, userIdOf, userOf } from './app.js'
export type { AuthorizeRequest, Authorizer, HubAction } from './authorize.js'
export type { ConnectionLimitOptions } from './connection-limits.js'
export { ConnectionLimiter, connectionLimitDefaults } from './connection-limits.js'
export type { ErrorBody, ErrorIssue, FlumenErrorCode, FlumenErrorOptions } from './errors.js'
export { codeForStatus, errorBody, errorCodes, errorResponse, FlumenError, toFlumenError } from './errors.js'
export { credentialExpiry, ExpiryTimer } from './expiry.js'
export { createId } from './id.js'
export type { Admission, LiveRouteShutdown } from './live-route.js'
export { LiveRoute } from './live-route.js'
export type { AllowedOrigins } from './options.js'
export {
  integerAtLeast,
  nonNegativeNumber,
  originAllowList,
  positiveInteger,
  positiveNumber,
} from './options.js'
export type { FramePosition, Peer, PreparedFrame, PrepareFrameOptions, Transport } from './peer.js'
export { prepareBatch, prepareFrame } from './peer.js'
export type { CloseOptions, FlumenPlugin, FlumenServer, ServerState } from './plugins.js'
export { drainConnections, responseAlreadySent } from './plugins.js'
export type { StreamPosition } from './position.js'
export { covers } from './position.js'
export type { BodyTimeoutHandler, BodyTimeouts, DiscardLimits } from './request-body.js'
export { bodyDefaults, hasRequestBody, RequestBody, resolveBodyTimeouts } from './request-body.js'
export type { FetchApp, ServeOptions } from './serve.js'
export { serve } from './serve.js'
