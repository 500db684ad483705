import type { ResumableStore } from './storage.js'

/** Why a new upload was refused. */
export interface QuotaRefusal {
  readonly status: 413 | 429
  readonly code: 'TOO_LARGE' | 'RATE_LIMITED'
  readonly message: string
}

interface OwnerUsage {
  readonly ids: Map<string, number>
  bytes: number
}

/**
 * Unfinished uploads per owner (how many, and the sum of their announced lengths). Built once from
 * the storage's partial uploads (so a restart keeps counting what is stored), then kept up to date
 * by this process: with several processes on one storage each counts its own creations after that.
 */
export class OwnerQuotas {
  private readonly owners = new Map<string, OwnerUsage>()
  private readonly ownerOfUpload = new Map<string, string>()
  private loading: Promise<void> | undefined

  constructor(private readonly storage: Pick<ResumableStore, 'listPartials' | 'partial'>) {}

  /** Counts `id` for `owner`, or says why it would go over a quota. */
  async reserve(
    owner: string,
    id: string,
    length: number,
    maxUploads: number,
    maxBytes: number,
  ): Promise<QuotaRefusal | undefined> {
    await this.load()
    const usage = this.usage(owner)
    if (usage.ids.size >= maxUploads)
      return {
        status: 429,
        code: 'RATE_LIMITED',
        message: `At most ${maxUploads} unfinished uploads at once`,
      }
    if (usage.bytes + length > maxBytes)
      return {
        status: 413,
        code: 'TOO_LARGE',
        message: `Unfinished uploads may hold at most ${maxBytes} bytes at once`,
      }
    this.add(owner, id, length)
    return undefined
  }

  /** The upload finished, was deleted or expired. */
  release(id: string): void {
    const owner = this.ownerOfUpload.get(id)
    if (owner === undefined) return
    this.ownerOfUpload.delete(id)
    const usage = this.owners.get(owner)
    if (!usage) return
    usage.bytes -= usage.ids.get(id) ?? 0
    usage.ids.delete(id)
    if (usage.ids.size === 0) this.owners.delete(owner)
  }

  private usage(owner: string): OwnerUsage {
    let usage = this.owners.get(owner)
    if (!usage) {
      usage = { ids: new Map(), bytes: 0 }
      this.owners.set(owner, usage)
    }
    return usage
  }

  private add(owner: string, id: string, length: number): void {
    const usage = this.usage(owner)
    usage.ids.set(id, length)
    usage.bytes += length
    this.ownerOfUpload.set(id, owner)
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      for (const id of await this.storage.listPartials()) {
        const found = await this.storage.partial(id).catch(() => undefined)
        if (found?.upload.owner !== undefined && !this.ownerOfUpload.has(id))
          this.add(found.upload.owner, id, found.upload.length)
      }
    })().catch(() => {
      this.loading = undefined
    })
    return this.loading
  }
}
