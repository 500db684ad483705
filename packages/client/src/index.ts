// The browser build (and any runtime with a global WebSocket); Node gets ./node.ts through the
// package's "node" export condition.
import type { AnyContract } from '@flumen/contract'
import type { Client, ClientOptions } from './channel.js'
import { createClientWith } from './channel.js'
import type { ConnectOptions, RawSocket, SocketFactory, WebSocketLike } from './socket.js'
import { connectWith } from './socket.js'

export * from './common.js'
export type { UploadOptions, UploadProgress, UploadResponse } from './upload.js'
export { uploadFile } from './upload-browser.js'

const browserSocket: SocketFactory = (url, protocols) => {
  const WebSocketClass = (
    globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike }
  ).WebSocket
  if (!WebSocketClass)
    throw new Error('@flumen/client: no global WebSocket (under Node the package resolves to its ws build)')
  return new WebSocketClass(url, protocols)
}

/** Opens a WebSocket to any server and resolves once it is open. */
export const connect = (url: string, options?: ConnectOptions): Promise<RawSocket> =>
  connectWith(browserSocket, url, options)

/** The channel client for a Flumen hub (protocol `flumen.v1`). */
export const createClient = <C extends AnyContract | undefined = undefined>(
  options: ClientOptions<C>,
): Client<C> => createClientWith(browserSocket, options)
