// What a Yjs document looks like on the hub: its topic, the messages stored in it and sent beside it,
// and the y-protocols sync messages the two methods carry. Shared by the server and the provider, so
// it imports nothing of Node (browsers bundle the provider).
import { fromBase64, toBase64 } from 'lib0/buffer'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { messageYjsSyncStep1, messageYjsSyncStep2, messageYjsUpdate } from 'y-protocols/sync'

/** Every document's topic starts with this: `doc:<id>`. */
export const topicPrefix = 'doc:'
/** Every method of the plugin starts with this: `yjs.sync`, `yjs.update`, `yjs.awareness`. */
export const methodPrefix = 'yjs.'

export const methods = {
  sync: 'yjs.sync',
  update: 'yjs.update',
  awareness: 'yjs.awareness',
} as const

/** Document ids: 1–128 characters of `A-Z a-z 0-9 _ - . : /`. */
const documentIdPattern = /^[\w.:/-]{1,128}$/

export const isDocumentId = (value: unknown): value is string =>
  typeof value === 'string' && documentIdPattern.test(value)

export const topicOf = (documentId: string): string => `${topicPrefix}${documentId}`

/** A stored message of a document's topic: one Yjs update. */
export interface UpdateMessage {
  /** The update (Yjs update v1), base64. */
  readonly u: string
}

/** A volatile message of a document's topic: an awareness update and the connection it came from. */
export interface AwarenessMessage {
  /** The awareness update (y-protocols), base64. */
  readonly a: string
  /** The connection that sent it: its states go when that connection leaves the topic. */
  readonly c: string
}

/** `yjs.sync` input: the caller's y-protocols sync step 1 (its state vector). */
export interface SyncRequest {
  readonly doc: string
  readonly message: string
}

/** `yjs.sync` result. */
export interface SyncResult {
  /** Sync step 2: what the server has that the caller's state vector lacks. */
  readonly message: string
  /** The server's sync step 1: the caller answers with what it has that the server lacks. */
  readonly step1: string
  /** The awareness states the server knows of (base64), if any. */
  readonly awareness?: string
  /** Where the state above stands in the document's topic: subscribe from here. */
  readonly epoch: string
  readonly offset: number
  /** Whether the caller may write (`yjs.update`); readers still share awareness. */
  readonly writable: boolean
}

/** `yjs.update` input: a y-protocols sync step 2 or update message. */
export interface UpdateRequest {
  readonly doc: string
  readonly message: string
}

/** `yjs.awareness` input: a y-protocols awareness update. */
export interface AwarenessRequest {
  readonly doc: string
  readonly update: string
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Bytes of strict base64, or undefined for anything else. */
export const decodeBase64 = (value: unknown): Uint8Array | undefined =>
  typeof value === 'string' && base64Pattern.test(value) ? fromBase64(value) : undefined

export const encodeBase64 = (bytes: Uint8Array): string => toBase64(bytes)

/** A y-protocols sync message: step 1 carries a state vector, step 2 and update an update. */
export const encodeSyncMessage = (type: 'step1' | 'step2' | 'update', payload: Uint8Array): Uint8Array => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(
    encoder,
    type === 'step1' ? messageYjsSyncStep1 : type === 'step2' ? messageYjsSyncStep2 : messageYjsUpdate,
  )
  encoding.writeVarUint8Array(encoder, payload)
  return encoding.toUint8Array(encoder)
}

/** The type and payload of a y-protocols sync message; undefined when it is not one (or has more). */
export const decodeSyncMessage = (
  bytes: Uint8Array,
): { type: 'step1' | 'step2' | 'update'; payload: Uint8Array } | undefined => {
  try {
    const decoder = decoding.createDecoder(bytes)
    const kind = decoding.readVarUint(decoder)
    const payload = decoding.readVarUint8Array(decoder)
    if (decoding.hasContent(decoder)) return undefined
    const type =
      kind === messageYjsSyncStep1
        ? 'step1'
        : kind === messageYjsSyncStep2
          ? 'step2'
          : kind === messageYjsUpdate
            ? 'update'
            : undefined
    return type && { type, payload }
  } catch {
    return undefined
  }
}
