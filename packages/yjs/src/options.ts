import type { Hub } from '@flumen/broadcast'
import type { Peer } from '@flumen/core'
import { positiveInteger } from '@flumen/core'

/** What a user may do with a document: edit it, read it (and share awareness), or nothing. */
export type DocumentAccess = 'write' | 'read' | 'none'

/** When a document's updates are folded into a snapshot through the engine. */
export interface SnapshotPolicy {
  /**
   * Fold once this many updates arrived since the last snapshot.
   * @default 500
   */
  afterUpdates?: number
  /**
   * Fold once the updates since the last snapshot reach this many bytes.
   * @default 1_048_576 (1 MiB)
   */
  afterBytes?: number
  /**
   * Fold once the oldest update not in a snapshot is this old: well inside the engine's history
   * window (10 minutes by default), so a restart finds snapshot + tail.
   * @default 30_000
   */
  afterMs?: number
}

// biome-ignore lint/suspicious/noExplicitAny: the hub's user type is the app's; any hub fits
export interface YjsOptions<User = any> {
  /** The hub whose WebSocket route clients use (with a contract or without); its engine keeps the documents. */
  // biome-ignore lint/suspicious/noExplicitAny: any contract: documents and their methods are not the contract's
  hub: Hub<User, any>
  /**
   * What a user may do with a document (`'write'`, `'read'`, `'none'`), asked on every sync and
   * subscribe; a refusal is `FORBIDDEN`. A throw is logged and counts as `'none'`.
   * @default every user may write every document
   */
  authorize?: (request: {
    user: User
    document: string
    peer: Peer<User>
  }) => DocumentAccess | Promise<DocumentAccess>
  /** @default { afterUpdates: 500, afterBytes: 1 MiB, afterMs: 30 s } */
  snapshots?: SnapshotPolicy
  /**
   * Largest update one `yjs.update` may carry (bytes of the Yjs update); more is `TOO_LARGE`. A
   * client's first sync of a large offline document is one update.
   * @default 524_288 (512 KiB)
   */
  maxUpdateBytes?: number
  /**
   * Largest document (its snapshot plus the updates since, in bytes): an update that would take it
   * past this is `TOO_LARGE`, and the document keeps what it had.
   * @default 16_777_216 (16 MiB)
   */
  maxDocumentBytes?: number
  /**
   * Updates per second one document takes on this node (from all its writers); more are
   * `RATE_LIMITED`. Each connection is bound by the hub's own rate limit too.
   * @default 200
   */
  maxUpdatesPerSecond?: number
  /**
   * Largest awareness update (bytes); more is `TOO_LARGE`.
   * @default 16_384
   */
  maxAwarenessBytes?: number
  /**
   * A document nobody on this node used for this long (no sync, update or awareness from a
   * connection here, none of them present) is folded into a snapshot and unloaded.
   * @default 60_000
   */
  idleMs?: number
  /** Where errors that reach no caller go (a snapshot that failed, say). @default console.error */
  logError?: (err: unknown) => void
}

export interface ResolvedYjsOptions<User> {
  readonly hub: Hub<User>
  readonly authorize: NonNullable<YjsOptions<User>['authorize']>
  readonly snapshots: Required<SnapshotPolicy>
  readonly maxUpdateBytes: number
  readonly maxDocumentBytes: number
  readonly maxUpdatesPerSecond: number
  readonly maxAwarenessBytes: number
  readonly idleMs: number
  readonly logError: (err: unknown) => void
}

export const yjsDefaults = {
  snapshots: { afterUpdates: 500, afterBytes: 1_048_576, afterMs: 30_000 },
  maxUpdateBytes: 524_288,
  maxDocumentBytes: 16_777_216,
  maxUpdatesPerSecond: 200,
  maxAwarenessBytes: 16_384,
  idleMs: 60_000,
} as const

/** Checks the options up front (a plain Error naming the option) and fills in the defaults. */
export const resolveYjsOptions = <User>(options: YjsOptions<User>): ResolvedYjsOptions<User> => {
  // Typed without a contract: the plugin's own names are not the contract's (`hub.own`).
  const hub = options?.hub as Hub<User> | undefined
  if (!hub || typeof hub.listen !== 'function' || typeof hub.method !== 'function')
    throw new Error('yjs: hub must be a hub of @flumen/broadcast (createHub)')
  if (options.authorize !== undefined && typeof options.authorize !== 'function')
    throw new Error('yjs: authorize must be a function')
  if (!hub.engine.loadSnapshot || !hub.engine.saveSnapshot)
    throw new Error(
      `yjs: the hub's engine (${hub.engine.name}) keeps no snapshots (loadSnapshot, saveSnapshot)`,
    )
  const given = options.snapshots ?? {}
  const pick = (name: keyof typeof yjsDefaults & keyof YjsOptions<User>): number =>
    positiveInteger('yjs', name, (options[name] as number | undefined) ?? (yjsDefaults[name] as number))
  return {
    hub,
    authorize: options.authorize ?? (() => 'write'),
    snapshots: {
      afterUpdates: positiveInteger(
        'yjs',
        'snapshots.afterUpdates',
        given.afterUpdates ?? yjsDefaults.snapshots.afterUpdates,
      ),
      afterBytes: positiveInteger(
        'yjs',
        'snapshots.afterBytes',
        given.afterBytes ?? yjsDefaults.snapshots.afterBytes,
      ),
      afterMs: positiveInteger('yjs', 'snapshots.afterMs', given.afterMs ?? yjsDefaults.snapshots.afterMs),
    },
    maxUpdateBytes: pick('maxUpdateBytes'),
    maxDocumentBytes: pick('maxDocumentBytes'),
    maxUpdatesPerSecond: pick('maxUpdatesPerSecond'),
    maxAwarenessBytes: pick('maxAwarenessBytes'),
    idleMs: pick('idleMs'),
    logError: options.logError ?? ((err: unknown) => console.error('[flumen/yjs]', err)),
  }
}
