// The documents this node holds: each loaded once (concurrent first uses share the load), folded into
// snapshots by the policy, and unloaded once idle, after a last snapshot.
import type { Hub } from '@flumen/broadcast'
import type { DocumentContext } from './document.js'
import { SharedDocument } from './document.js'
import type { ResolvedYjsOptions } from './options.js'
import type { DocumentStats } from './stats.js'
import { topicOf } from './wire.js'

export class Documents<User> {
  private readonly loaded = new Map<string, Promise<SharedDocument>>()
  private readonly timer: NodeJS.Timeout
  readonly counts: { snapshots: number; updates: number; refused: number } = {
    snapshots: 0,
    updates: 0,
    refused: 0,
  }
  private closed = false
  private readonly context: DocumentContext

  constructor(
    private readonly hub: Hub<User>,
    private readonly options: ResolvedYjsOptions<User>,
  ) {
    const engine = hub.engine
    this.context = {
      loadSnapshot: (key) => engine.loadSnapshot!(key),
      saveSnapshot: async (key, value) => {
        await engine.saveSnapshot!(key, value)
        this.counts.snapshots++
      },
      presentConnections: async (topic) => (await engine.presenceList(topic)).map((m) => m.connectionId),
      publishAwareness: async (topic, message) => {
        await hub.publish(topic, message, { volatile: true })
      },
      logError: options.logError,
    }
    // One timer for every document: snapshots that are due by age, and idle documents.
    const periodMs = Math.max(50, Math.min(1_000, options.snapshots.afterMs / 2, options.idleMs / 2))
    this.timer = setInterval(() => this.sweep(), periodMs)
    this.timer.unref()
  }

  get size(): number {
    return this.loaded.size
  }

  /** The document, loaded on first use and marked used now. */
  async acquire(id: string): Promise<SharedDocument> {
    if (this.closed) throw new Error('yjs: closed')
    let loading = this.loaded.get(id)
    if (!loading) {
      loading = this.load(id)
      this.loaded.set(id, loading)
      loading.catch(() => this.loaded.delete(id))
    }
    const document = await loading
    document.lastUsed = Date.now()
    return document
  }

  private async load(id: string): Promise<SharedDocument> {
    const document = new SharedDocument(id, topicOf(id), this.context)
    try {
      await document.load(
        (since) =>
          this.hub.listen(
            document.topic,
            {
              onMessage: document.onMessage,
              onVolatile: document.onVolatile,
              onPresence: document.onPresence,
            },
            { since },
          ),
        async (topic) => (await this.hub.engine.history(topic)).position.epoch,
      )
    } catch (err) {
      document.close()
      throw err
    }
    return document
  }

  /** Called after each update this node took: folds the document when the policy says so. */
  afterUpdate(document: SharedDocument): void {
    if (document.due(this.options.snapshots, Date.now())) this.save(document)
  }

  private save(document: SharedDocument): Promise<void> {
    return document.snapshot().catch(this.options.logError)
  }

  private sweep(): void {
    const now = Date.now()
    for (const [id, loading] of this.loaded)
      void loading.then(
        (document) => {
          if (document.closed) return
          if (document.localConnections.size === 0 && now - document.lastUsed >= this.options.idleMs)
            void this.unload(id, document)
          else if (document.due(this.options.snapshots, now)) void this.save(document)
        },
        () => {},
      )
  }

  private async unload(id: string, document: SharedDocument): Promise<void> {
    if (this.loaded.get(id) === undefined) return
    this.loaded.delete(id)
    await this.save(document)
    document.close()
  }

  stats(): DocumentStats {
    return { loaded: this.loaded.size, ...this.counts }
  }

  /** Folds every loaded document with unsaved updates into a snapshot now. */
  async flush(): Promise<void> {
    await Promise.all(
      [...this.loaded.values()].map(async (loading) => {
        const document = await loading.catch(() => undefined)
        if (document) await document.snapshot()
      }),
    )
  }

  /** Folds every document into a snapshot and unloads it (on shutdown). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    const all = [...this.loaded.entries()]
    this.loaded.clear()
    await Promise.all(
      all.map(async ([, loading]) => {
        const document = await loading.catch(() => undefined)
        if (!document) return
        await this.save(document)
        document.close()
      }),
    )
  }
}
