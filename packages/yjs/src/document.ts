// One document as this node holds it: a Y.Doc kept current from its topic (every node's updates, in
// offset order), the awareness states shared beside it, where it stands in the topic, and what is not
// yet in a snapshot.
import type { EngineMessage, Listening, PresenceChange, VolatileMessage } from '@flumen/broadcast'
import type { StreamPosition } from '@flumen/core'
import * as decoding from 'lib0/decoding'
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from 'y-protocols/awareness'
import * as Y from 'yjs'
import type { AwarenessMessage, UpdateMessage } from './wire.js'
import { decodeBase64, encodeBase64 } from './wire.js'

/** A snapshot as the engine keeps it: the whole state and the topic position it covers. */
interface StoredSnapshot {
  readonly v: 1
  readonly epoch: string
  readonly offset: number
  /** `Y.encodeStateAsUpdate`, base64. */
  readonly state: string
}

/** What a document needs of the plugin around it. */
export interface DocumentContext {
  loadSnapshot(key: string): Promise<string | undefined>
  saveSnapshot(key: string, value: string): Promise<void>
  /** The connections present in the topic now, on every node. */
  presentConnections(topic: string): Promise<string[]>
  /** Sends an awareness update to the document's topic (volatile, every node). */
  publishAwareness(topic: string, message: AwarenessMessage): Promise<void>
  logError(err: unknown): void
}

/** The client ids an awareness update speaks for; undefined when it is not one. */
export const awarenessClients = (update: Uint8Array, maxClients: number): number[] | undefined => {
  try {
    const decoder = decoding.createDecoder(update)
    const count = decoding.readVarUint(decoder)
    if (count > maxClients) return undefined
    const clients: number[] = []
    for (let i = 0; i < count; i++) {
      clients.push(decoding.readVarUint(decoder))
      decoding.readVarUint(decoder) // clock
      const state: unknown = JSON.parse(decoding.readVarString(decoder))
      if (state !== null && typeof state !== 'object') return undefined
    }
    return decoding.hasContent(decoder) ? undefined : clients
  } catch {
    return undefined
  }
}

export class SharedDocument {
  readonly doc: Y.Doc = new Y.Doc()
  readonly awareness: Awareness
  /** Where `doc` stands in the topic: it holds every update up to here. */
  position: StreamPosition = { epoch: '', offset: 0 }
  /** Bytes of the last snapshot plus the updates since: the document's size as the limits see it. */
  bytes: number = 0
  /** Updates since the last snapshot, their bytes, and when the first of them came (ms). */
  unsaved: { updates: number; bytes: number; since: number } = { updates: 0, bytes: 0, since: 0 }
  /** When a connection of this node last used the document (ms). */
  lastUsed: number = Date.now()
  /** Awareness client ids and the connection each came from (on any node). */
  private readonly owners = new Map<number, string>()
  /** Connections subscribed to the document's topic (its presence), on every node. */
  private readonly present = new Set<string>()
  /** Connections of this node whose awareness states this node removes when they leave. */
  readonly localConnections: Set<string> = new Set()
  private listening: Listening | undefined
  private saving: Promise<void> | undefined
  closed: boolean = false

  constructor(
    readonly id: string,
    readonly topic: string,
    private readonly context: DocumentContext,
  ) {
    this.awareness = new Awareness(this.doc)
    // The server shares no state of its own; its timer still drops states nobody renewed in 30 s.
    this.awareness.setLocalState(null)
  }

  /**
   * Loads the snapshot, then reads the topic from where it stands through `listen` (without a
   * snapshot, from the first message of the topic's epoch, which `epochOf` reads).
   */
  async load(
    listen: (since: StreamPosition) => Promise<Listening>,
    epochOf: (topic: string) => Promise<string>,
  ): Promise<void> {
    const raw = await this.context.loadSnapshot(this.topic)
    const snapshot = raw === undefined ? undefined : this.parseSnapshot(raw)
    if (snapshot) {
      const state = decodeBase64(snapshot.state)!
      Y.applyUpdate(this.doc, state, this)
      this.bytes = state.length
      this.position = { epoch: snapshot.epoch, offset: snapshot.offset }
    }
    const since = snapshot ? this.position : { epoch: await epochOf(this.topic), offset: 0 }
    this.listening = await listen(since)
    if (!this.listening.recovered)
      this.context.logError(
        new Error(
          `yjs: document ${this.id}: updates after its ${snapshot ? 'snapshot' : 'start'} may have left the history (its epoch changed or the gap passed the window); it goes on without them (clients send what they hold when they sync)`,
        ),
      )
    for (const connection of await this.context.presentConnections(this.topic)) this.present.add(connection)
    if (
      this.position.epoch !== this.listening.position.epoch ||
      this.position.offset < this.listening.position.offset
    )
      this.position = this.listening.position
  }

  private parseSnapshot(raw: string): StoredSnapshot | undefined {
    try {
      const parsed = JSON.parse(raw) as StoredSnapshot
      if (parsed.v === 1 && typeof parsed.epoch === 'string' && Number.isSafeInteger(parsed.offset)) {
        if (decodeBase64(parsed.state)) return parsed
      }
    } catch {}
    this.context.logError(
      new Error(`yjs: document ${this.id}: its snapshot is unreadable; loading from history`),
    )
    return undefined
  }

  /** An update from the topic (every node's, in offset order). */
  readonly onMessage = (message: EngineMessage): void => {
    this.position = { epoch: message.epoch, offset: message.offset }
    let update: Uint8Array | undefined
    try {
      update = decodeBase64((JSON.parse(message.data) as UpdateMessage).u)
    } catch {}
    if (!update) {
      this.context.logError(new Error(`yjs: document ${this.id}: message ${message.offset} is not an update`))
      return
    }
    try {
      Y.applyUpdate(this.doc, update, this)
    } catch (err) {
      this.context.logError(err)
      return
    }
    this.bytes += update.length
    if (this.unsaved.updates === 0) this.unsaved.since = Date.now()
    this.unsaved.updates++
    this.unsaved.bytes += update.length
  }

  /** An awareness update from the topic: applied, and who sent it remembered. */
  readonly onVolatile = (message: VolatileMessage): void => {
    let parsed: AwarenessMessage
    try {
      parsed = JSON.parse(message.data) as AwarenessMessage
    } catch {
      return
    }
    const update = decodeBase64(parsed.a)
    const clients = update && awarenessClients(update, Number.MAX_SAFE_INTEGER)
    if (!update || !clients || typeof parsed.c !== 'string') return
    for (const client of clients) this.owners.set(client, parsed.c)
    applyAwarenessUpdate(this.awareness, update, this)
  }

  /** Connections that left: their awareness states go, and this node tells everyone of its own. */
  readonly onPresence = (change: PresenceChange): void => {
    for (const member of change.join ?? []) this.present.add(member.connectionId)
    for (const member of change.leave ?? []) {
      this.present.delete(member.connectionId)
      const clients: number[] = []
      for (const [client, connection] of this.owners)
        if (connection === member.connectionId) {
          clients.push(client)
          this.owners.delete(client)
        }
      if (clients.length === 0) continue
      const local = this.localConnections.delete(member.connectionId)
      removeAwarenessStates(this.awareness, clients, this)
      if (!local) continue
      // The removal carries each state's next clock: every node and client drops it.
      const removal = encodeAwarenessUpdate(
        this.awareness,
        clients.filter((c) => this.awareness.meta.has(c)),
      )
      this.context
        .publishAwareness(this.topic, { a: encodeBase64(removal), c: member.connectionId })
        .catch(this.context.logError)
    }
  }

  /** Whether the connection is subscribed to the document's topic. */
  isPresent(connection: string): boolean {
    return this.present.has(connection)
  }

  /** The connection that speaks for an awareness client id, if one does. */
  ownerOf(client: number): string | undefined {
    return this.owners.get(client)
  }

  /** Every awareness state this node knows of, as one update (undefined when none). */
  awarenessState(): Uint8Array | undefined {
    const clients = [...this.awareness.states.keys()]
    return clients.length > 0 ? encodeAwarenessUpdate(this.awareness, clients) : undefined
  }

  /** Whether the updates not in a snapshot are due to be folded into one. */
  due(policy: { afterUpdates: number; afterBytes: number; afterMs: number }, now: number): boolean {
    const { updates, bytes, since } = this.unsaved
    return (
      updates > 0 &&
      (updates >= policy.afterUpdates || bytes >= policy.afterBytes || now - since >= policy.afterMs)
    )
  }

  /** Folds the document into a snapshot at its position (one save at a time). */
  snapshot(): Promise<void> {
    if (this.unsaved.updates === 0) return this.saving ?? Promise.resolve()
    this.saving ??= this.save().finally(() => {
      this.saving = undefined
    })
    return this.saving
  }

  private async save(): Promise<void> {
    const state = Y.encodeStateAsUpdate(this.doc)
    const taken = { ...this.unsaved }
    const value: StoredSnapshot = { v: 1, ...this.position, state: encodeBase64(state) }
    await this.context.saveSnapshot(this.topic, JSON.stringify(value))
    // Updates that came while saving stay unsaved.
    this.bytes = state.length + (this.unsaved.bytes - taken.bytes)
    this.unsaved = {
      updates: this.unsaved.updates - taken.updates,
      bytes: this.unsaved.bytes - taken.bytes,
      since: this.unsaved.updates > taken.updates ? Date.now() : 0,
    }
  }

  /** Stops reading the topic and frees the document (after a last snapshot, by the caller). */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.listening?.close()
    this.awareness.destroy()
    this.doc.destroy()
  }
}
