import type { EngineMessage, HistoryResult, StreamPosition } from './engine.js'

/**
 * The recovery decision every engine makes the same way: `since` is recovered when it is in the
 * stream's epoch, not ahead of it, and the messages still kept after it start right after it (none
 * aged or trimmed out of the window). `kept` reads the messages after `since.offset`, oldest first;
 * it is only called when there can be some.
 */
export const recoveryOf = (
  since: StreamPosition | undefined,
  position: StreamPosition,
  kept: () => readonly EngineMessage[],
): HistoryResult => {
  if (!since) return { recovered: true, messages: [], position }
  if (since.epoch !== position.epoch || since.offset > position.offset)
    return { recovered: false, messages: [], position }
  if (since.offset === position.offset) return { recovered: true, messages: [], position }
  const messages = kept()
  if (messages[0]?.offset !== since.offset + 1) return { recovered: false, messages: [], position }
  return { recovered: true, messages, position }
}
