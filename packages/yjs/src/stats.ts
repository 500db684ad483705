// What the plugin counts on this node (its own module: the server's public types stay free of Yjs's,
// whose declarations need the DOM library).
/** Counts of the documents on this node. */
export interface DocumentStats {
  /** Documents loaded now. */
  readonly loaded: number
  /** Snapshots saved since start. */
  readonly snapshots: number
  /** Updates taken (`yjs.update`) and refused (limits, malformed, read-only) on this node. */
  readonly updates: number
  readonly refused: number
}
