// The plugin: owns the `doc:` topics and `yjs.` methods of a hub, and answers the three methods
// (sync, update, awareness) against the documents this node holds.
import type { CallContext } from '@flumen/broadcast'
import type { FlumenPlugin } from '@flumen/core'
import { FlumenError } from '@flumen/core'
import * as Y from 'yjs'
import type { SharedDocument } from './document.js'
import { awarenessClients } from './document.js'
import { Documents } from './documents.js'
import type { DocumentAccess, YjsOptions } from './options.js'
import { resolveYjsOptions } from './options.js'
import type { DocumentStats } from './stats.js'
import type { AwarenessRequest, SyncRequest, SyncResult, UpdateRequest } from './wire.js'
import {
  decodeBase64,
  decodeSyncMessage,
  encodeBase64,
  encodeSyncMessage,
  isDocumentId,
  methodPrefix,
  methods,
  topicPrefix,
} from './wire.js'

/** The Yjs plugin of a hub: list it after the hub in `serve({ plugins })`, so it saves before the engine closes. */
export interface YjsServer extends FlumenPlugin {
  /** Documents loaded on this node, snapshots saved, updates taken and refused. */
  readonly stats: DocumentStats
  /** Folds every loaded document into a snapshot now. */
  flush(): Promise<void>
}

/** At most this many awareness states in one update: a client sends its own. */
const maxAwarenessClients = 8

/**
 * Yjs documents over a hub: `doc:<id>` topics that clients sync with `yjs.sync`, edit with
 * `yjs.update` and share awareness on with `yjs.awareness`, each authorized per document.
 */
// biome-ignore lint/suspicious/noExplicitAny: the hub's user type is the app's; any hub fits
export const yjs = <User = any>(options: YjsOptions<User>): YjsServer => {
  const resolved = resolveYjsOptions(options)
  const { hub, authorize, logError } = resolved
  const documents = new Documents<User>(hub, resolved)

  const accessOf = async (
    user: User,
    document: string,
    context: CallContext<User>,
  ): Promise<DocumentAccess> => {
    try {
      const access = await authorize({ user, document, peer: context.peer })
      return access === 'write' || access === 'read' ? access : 'none'
    } catch (err) {
      logError(err)
      return 'none'
    }
  }

  /** The document a call names, once its caller may at least read it. */
  const open = async (
    data: unknown,
    context: CallContext<User>,
    needs: 'read' | 'write',
  ): Promise<{ document: SharedDocument; access: DocumentAccess }> => {
    const id = (data as Partial<SyncRequest> | null)?.doc
    if (!isDocumentId(id))
      throw new FlumenError('BAD_REQUEST', 'doc must be 1–128 characters of A-Z a-z 0-9 _ - . : /')
    const access = await accessOf(context.user, id, context)
    if (access === 'none' || (needs === 'write' && access !== 'write')) {
      documents.counts.refused++
      throw new FlumenError('FORBIDDEN', `Not allowed to ${needs === 'write' ? 'edit' : 'read'} ${id}`)
    }
    return { document: await documents.acquire(id), access }
  }

  const refuse = (code: 'BAD_REQUEST' | 'TOO_LARGE' | 'RATE_LIMITED', message: string): never => {
    documents.counts.refused++
    throw new FlumenError(code, message)
  }

  // Per document on this node: a token bucket of updates, refilled every second.
  const buckets = new WeakMap<SharedDocument, { tokens: number; at: number }>()
  const takeToken = (document: SharedDocument): boolean => {
    const now = Date.now()
    const limit = resolved.maxUpdatesPerSecond
    const bucket = buckets.get(document) ?? { tokens: limit, at: now }
    bucket.tokens = Math.min(limit, bucket.tokens + ((now - bucket.at) * limit) / 1000)
    bucket.at = now
    buckets.set(document, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens--
    return true
  }

  hub.own(topicPrefix, async ({ user, action, topic, peer }) => {
    // Documents change only through yjs.update, which checks what a publish cannot.
    if (action !== 'subscribe') return false
    const id = topic.slice(topicPrefix.length)
    if (!isDocumentId(id)) return false
    return (await accessOf(user, id, { user, peer })) !== 'none'
  })
  // The methods check access per document themselves.
  hub.own(methodPrefix, () => true)

  hub.method(methods.sync, async (data, context): Promise<SyncResult> => {
    const { document, access } = await open(data, context, 'read')
    const step1 = decodeBase64((data as Partial<SyncRequest>).message)
    const message = step1 && decodeSyncMessage(step1)
    if (message?.type !== 'step1')
      return refuse('BAD_REQUEST', 'message must be a y-protocols sync step 1, base64')
    let diff: Uint8Array
    try {
      diff = Y.encodeStateAsUpdate(document.doc, message.payload)
    } catch {
      return refuse('BAD_REQUEST', 'message holds no state vector')
    }
    const awareness = document.awarenessState()
    return {
      message: encodeBase64(encodeSyncMessage('step2', diff)),
      step1: encodeBase64(encodeSyncMessage('step1', Y.encodeStateVector(document.doc))),
      ...(awareness && { awareness: encodeBase64(awareness) }),
      ...document.position,
      writable: access === 'write',
    }
  })

  hub.method(methods.update, async (data, context): Promise<{ offset: number }> => {
    const raw = decodeBase64((data as Partial<UpdateRequest> | null)?.message)
    const { document } = await open(data, context, 'write')
    const message = raw && decodeSyncMessage(raw)
    if (!message || message.type === 'step1')
      return refuse('BAD_REQUEST', 'message must be a y-protocols sync step 2 or update, base64')
    const update = message.payload
    if (update.length > resolved.maxUpdateBytes)
      return refuse('TOO_LARGE', `An update is limited to ${resolved.maxUpdateBytes} bytes`)
    try {
      Y.decodeUpdate(update)
    } catch {
      return refuse('BAD_REQUEST', 'message holds no Yjs update')
    }
    // An empty update (nothing the server lacked) changes nothing: no message.
    if (update.length <= 2) return { offset: document.position.offset }
    if (!takeToken(document)) return refuse('RATE_LIMITED', 'Too many updates to this document')
    if (document.bytes + update.length > resolved.maxDocumentBytes)
      return refuse('TOO_LARGE', `A document is limited to ${resolved.maxDocumentBytes} bytes`)
    const offset = await hub.publish(document.topic, { u: encodeBase64(update) }, { except: context.peer })
    documents.counts.updates++
    documents.afterUpdate(document)
    return { offset }
  })

  hub.method(methods.awareness, async (data, context): Promise<null> => {
    const update = decodeBase64((data as Partial<AwarenessRequest> | null)?.update)
    const { document } = await open(data, context, 'read')
    if (!update) return refuse('BAD_REQUEST', 'update must be a y-protocols awareness update, base64')
    if (update.length > resolved.maxAwarenessBytes)
      return refuse('TOO_LARGE', `An awareness update is limited to ${resolved.maxAwarenessBytes} bytes`)
    const clients = awarenessClients(update, maxAwarenessClients)
    if (!clients) return refuse('BAD_REQUEST', 'update is not an awareness update')
    const connection = context.peer.id
    // A client id speaks for the connection that used it first: no one else may change its state.
    for (const client of clients) {
      const owner = document.ownerOf(client)
      if (owner !== undefined && owner !== connection)
        throw new FlumenError('FORBIDDEN', `Awareness client ${client} belongs to another connection`)
    }
    // Its states go when it leaves the topic's presence: it must be in it.
    if (!document.isPresent(connection))
      return refuse('BAD_REQUEST', `Subscribe to ${document.topic} before sharing awareness`)
    document.localConnections.add(connection)
    await hub.publish(
      document.topic,
      { a: encodeBase64(update), c: connection },
      {
        volatile: true,
        except: context.peer,
      },
    )
    return null
  })

  return {
    name: 'flumen-yjs',
    get stats() {
      return documents.stats()
    },
    flush: () => documents.flush(),
    stop: () => documents.close(),
  }
}
