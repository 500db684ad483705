// The Node build: WebSockets from `ws` (Node 20 has no global WebSocket), uploads from streams.

import type { AnyContract } from '@flumen/contract'
import WebSocket from 'ws'
import type { Client, ClientOptions } from './channel.js'
import { createClientWith } from './channel.js'
import type { ResumableFile, ResumableUploadOptions, ResumableUploadResult } from './resumable.js'
import { resumableUploadWith } from './resumable.js'
import { fetchTransport } from './resumable-transports.js'
import type { ConnectOptions, RawSocket, SocketFactory } from './socket.js'
import { connectWith } from './socket.js'

export * from './common.js'
export type { UploadOptions, UploadProgress, UploadResponse } from './upload.js'
export type { NodeUploadFile } from './upload-node.js'
export { uploadFile } from './upload-node.js'

/**
 * Uploads a Blob (`fs.openAsBlob(path)`, a File) to a tus endpoint in chunks, resuming after a drop
 * from what the server has (progress per chunk; pass `store` to resume across processes).
 */
export const resumableUpload = (
  endpoint: string,
  file: ResumableFile,
  options?: ResumableUploadOptions,
): Promise<ResumableUploadResult> => resumableUploadWith(fetchTransport, endpoint, file, options)

const nodeSocket: SocketFactory = (url, protocols, options) =>
  new WebSocket(url, protocols, {
    perMessageDeflate: options.perMessageDeflate ?? false,
    ...(options.headers && { headers: options.headers }),
  })

/** Opens a WebSocket to any server and resolves once it is open. */
export const connect = (url: string, options?: ConnectOptions): Promise<RawSocket> =>
  connectWith(nodeSocket, url, options)

/** The channel client for a Flumen hub (protocol `flumen.v1`). */
export const createClient = <C extends AnyContract | undefined = undefined>(
  options: ClientOptions<C>,
): Client<C> => createClientWith(nodeSocket, options)
