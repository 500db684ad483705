export type { Peer, PreparedFrame } from '@flumen/core'

/** A topic position (the same shape as @flumen/broadcast's StreamPosition). */
export interface StreamPosition {
  readonly epoch: string
  readonly offset: number
}
