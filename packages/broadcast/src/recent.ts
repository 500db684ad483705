// The newest messages of a topic still in its history window, read through any engine: what a page
// shows when it opens a topic, what an inspector lists.
import type { Engine, EngineMessage, StreamPosition } from './engine.js'

/**
 * Up to `max` of the topic's newest messages and the position they reach: fewer when older ones left
 * the window (by count or age), found by halving the span asked for.
 */
export const recentMessages = async (
  engine: Engine,
  topic: string,
  max: number,
): Promise<{ position: StreamPosition; messages: readonly EngineMessage[] }> => {
  const { position } = await engine.history(topic)
  for (let count = Math.min(max, position.offset); count > 0; count = Math.floor(count / 2)) {
    const result = await engine.history(topic, { epoch: position.epoch, offset: position.offset - count })
    if (result.recovered) return { position: result.position, messages: result.messages }
  }
  return { position, messages: [] }
}
