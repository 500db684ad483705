// The client side: binds a Y.Doc (and its awareness) to a document of a hub through @flumen/client.
// It syncs on every connection (so edits made offline go up when it is back), applies the updates
// of the document's topic, and sends each local update; the client's own reconnects, backoff and
// recovery do the rest. Browser-safe: no Node import.
import type { Client, FlumenClientError, Subscription } from '@flumen/client'
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from 'y-protocols/awareness'
import * as Y from 'yjs'
import type {
  AwarenessMessage,
  AwarenessRequest,
  SyncRequest,
  SyncResult,
  UpdateMessage,
  UpdateRequest,
} from './wire.js'
import { decodeBase64, decodeSyncMessage, encodeBase64, encodeSyncMessage, methods, topicOf } from './wire.js'

export interface YjsProviderOptions {
  /**
   * The awareness to share (cursors, selections, who is here); `false` shares none.
   * @default a new `Awareness` of the document
   */
  awareness?: Awareness | false
}

export interface YjsProviderEvents {
  /** The document holds the server's state (after each connection's sync). */
  synced: () => void
  /** What no call awaits: a refused update (`FORBIDDEN` for a reader, `TOO_LARGE`), a failed sync. */
  error: (error: FlumenClientError | Error) => void
}

export interface YjsProvider {
  readonly doc: Y.Doc
  readonly awareness: Awareness | undefined
  /** True once this connection's sync completed; false again while disconnected. */
  readonly synced: boolean
  /** Whether the server lets this user edit the document (known after the first sync). */
  readonly writable: boolean
  /** Resolves at the next completed sync (at once when synced); rejects once the provider is destroyed. */
  whenSynced(): Promise<void>
  on<E extends keyof YjsProviderEvents>(event: E, listener: YjsProviderEvents[E]): () => void
  /** Stops: awareness state removed, topic left, listeners off. The doc and the client stay. */
  destroy(): Promise<void>
}

/** Binds `doc` to the hub's document `id` over `client` (a `createClient` of @flumen/client). */
export const yjsProvider = (
  // biome-ignore lint/suspicious/noExplicitAny: a client with any contract (or none): documents are not the contract's
  typedClient: Client<any>,
  id: string,
  doc: Y.Doc,
  options: YjsProviderOptions = {},
): YjsProvider => {
  // At runtime a contract leaves the names it does not know unchecked: `doc:` topics and `yjs.` methods.
  const client = typedClient as Client
  const topic = topicOf(id)
  const awareness = options.awareness === false ? undefined : (options.awareness ?? new Awareness(doc))
  const ownAwareness = options.awareness === undefined
  const listeners = { synced: new Set<() => void>(), error: new Set<(error: Error) => void>() }
  const emitError = (error: unknown): void => {
    const err = error instanceof Error ? error : new Error(String(error))
    if (listeners.error.size === 0) console.error('[flumen/yjs]', err)
    for (const listener of listeners.error) listener(err)
  }
  let subscription: Subscription | undefined
  let synced = false
  let writable = false
  let destroyed = false
  let syncing: Promise<void> | undefined
  let present = false
  const waiters: { resolve: () => void; reject: (err: Error) => void }[] = []

  const applyUpdate = (update: Uint8Array): void => Y.applyUpdate(doc, update, provider)

  const onTopicMessage = (data: unknown, meta: { volatile?: boolean }): void => {
    try {
      if (meta.volatile) {
        const update = decodeBase64((data as AwarenessMessage).a)
        if (update && awareness) applyAwarenessUpdate(awareness, update, provider)
        return
      }
      const update = decodeBase64((data as UpdateMessage).u)
      if (update) applyUpdate(update)
    } catch (err) {
      emitError(err)
    }
  }

  const sendUpdate = (update: Uint8Array, type: 'update' | 'step2'): Promise<unknown> =>
    client.call(methods.update, {
      doc: id,
      message: encodeBase64(encodeSyncMessage(type, update)),
    } satisfies UpdateRequest)

  const sync = async (): Promise<void> => {
    const result = await client.call<SyncResult>(methods.sync, {
      doc: id,
      message: encodeBase64(encodeSyncMessage('step1', Y.encodeStateVector(doc))),
    } satisfies SyncRequest)
    if (destroyed) return
    writable = result.writable === true
    const step2 = decodeSyncMessage(decodeBase64(result.message) ?? new Uint8Array())
    if (step2) applyUpdate(step2.payload)
    const states = result.awareness === undefined ? undefined : decodeBase64(result.awareness)
    if (states && awareness) applyAwarenessUpdate(awareness, states, provider)
    // From where the state above stands: the topic's updates after it, then live ones.
    subscription ??= client.subscribe(topic, onTopicMessage, {
      since: { epoch: result.epoch, offset: result.offset },
    })
    await subscription.ready
    // What this side has that the server lacks (edits made offline, or before the first sync).
    const serverState = decodeSyncMessage(decodeBase64(result.step1) ?? new Uint8Array())
    if (writable && serverState?.type === 'step1') {
      const missing = Y.encodeStateAsUpdate(doc, serverState.payload)
      if (missing.length > 2) await sendUpdate(missing, 'step2')
    }
    if (destroyed) return
    synced = true
    for (const waiter of waiters.splice(0)) waiter.resolve()
    for (const listener of listeners.synced) listener()
    void sendAwareness()
  }

  const startSync = (): void => {
    if (destroyed || syncing) return
    syncing = sync()
      .catch((err: unknown) => {
        // A dropped connection syncs again when the next one opens.
        if (
          (err as FlumenClientError).code !== 'DISCONNECTED' &&
          (err as FlumenClientError).code !== 'CLOSED'
        )
          emitError(err)
      })
      .finally(() => {
        syncing = undefined
      })
  }

  const onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    // Updates from the server, or made before the sync: the next sync's diff carries them.
    if (origin === provider || !synced || !writable) return
    sendUpdate(update, 'update').catch((err: unknown) => {
      if ((err as FlumenClientError).code === 'DISCONNECTED') return // the next sync sends it
      emitError(err)
    })
  }

  /** Sends this side's awareness states (its own by default); errors nobody awaits become `error` events. */
  const sendAwareness = async (clients: number[] = awareness ? [awareness.clientID] : []): Promise<void> => {
    if (!awareness || !synced || !present || clients.length === 0) return
    const update = encodeAwarenessUpdate(awareness, clients)
    await client
      .call(methods.awareness, { doc: id, update: encodeBase64(update) } satisfies AwarenessRequest)
      .catch((err: unknown) => {
        if ((err as FlumenClientError).code !== 'DISCONNECTED') emitError(err)
      })
  }

  const onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === provider) return
    const own = [...added, ...updated, ...removed].filter((client) => client === awareness?.clientID)
    void sendAwareness(own)
  }

  const offState = client.on('state', (state) => {
    if (state === 'open') startSync()
    else {
      synced = false
      present = false
    }
  })
  const offReset = client.on('reset', (event) => {
    if (event.topic === topic) startSync()
  })
  // Awareness goes out once the server counts this connection present (its states go when it leaves).
  const offPresence = client.on('presence', (event) => {
    if (event.topic !== topic || present) return
    present = true
    void sendAwareness()
  })
  doc.on('update', onDocUpdate)
  awareness?.on('update', onAwarenessUpdate)
  if (client.state === 'open') startSync()

  const provider: YjsProvider = {
    doc,
    awareness,
    get synced() {
      return synced
    },
    get writable() {
      return writable
    },
    whenSynced: () => {
      if (destroyed) return Promise.reject(new Error('The provider was destroyed'))
      return synced ? Promise.resolve() : new Promise((resolve, reject) => waiters.push({ resolve, reject }))
    },
    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>
      set.add(listener)
      return () => set.delete(listener)
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      offState()
      offReset()
      offPresence()
      doc.off('update', onDocUpdate)
      if (awareness) {
        awareness.off('update', onAwarenessUpdate)
        // Others drop this state now rather than after its 30 s timeout.
        if (synced && present && awareness.getLocalState() !== null) {
          removeAwarenessStates(awareness, [awareness.clientID], provider)
          await sendAwareness()
        }
        if (ownAwareness) awareness.destroy()
      }
      for (const waiter of waiters.splice(0)) waiter.reject(new Error('The provider was destroyed'))
      await subscription?.unsubscribe().catch(() => {})
    },
  }
  return provider
}
