// The browser build (and any runtime with a global WebSocket); Node gets ./node.ts through the
// package's "node" export condition.
import type { AnyContract } from '@flumen/contract'
import type { Client, ClientOptions } from './channel.js'
import { createClientWith } from './channel.js'
import type { ResumableFile, ResumableUploadOptions, ResumableUploadResult } from './resumable.js'
import { resumableUploadWith } from './resumable.js'
import { xhrTransport } from './resumable-transports.js'
import type { ConnectOptions, RawSocket, SocketFactory, WebSocketLike } from './socket.js'
import { connectWith } from './socket.js'

export * from './common.js'
export type { UploadOptions, UploadProgress, UploadResponse } from './upload.js'
export { uploadFile } from './upload-browser.js'

/**
 * Uploads a File or Blob to a tus endpoint (`tus()` of @flumen/uploads, or any tus 1.0 server) in
 * chunks, resuming after a drop from what the server has, and after a reload when the same file is
 * chosen again (its URL is kept in localStorage).
 */
export const resumableUpload = (
  endpoint: string,
  file: ResumableFile,
  options?: ResumableUploadOptions,
): Promise<ResumableUploadResult> => resumableUploadWith(xhrTransport, endpoint, file, options)

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
