// Server code reading a topic without a connection (`hub.listen`): the messages after a position,
// then live ones, handed over from history to live without a gap or a duplicate, as a subscriber's.
import type { StreamPosition } from '@flumen/core'
import { covers } from '@flumen/core'
import type { Engine, EngineMessage, HistoryResult } from './engine.js'
import type { TopicListener, Topics } from './topics.js'

export type { TopicListener }

/** A listener reading a topic: where it started, and how it stops. */
export interface Listening {
  /** False when the gap after `since` left the history (or the epoch changed): resync. */
  readonly recovered: boolean
  /** The position the history read covered: messages after it are the live ones. */
  readonly position: StreamPosition
  /** Stops reading; the node lets go of the topic once nothing else here reads it. */
  close(): void
}

export const listen = async <User>(
  engine: Engine,
  topics: Topics<User>,
  name: string,
  listener: TopicListener,
  since: StreamPosition | undefined,
): Promise<Listening> => {
  if (typeof listener?.onMessage !== 'function') throw new Error('hub.listen: onMessage must be a function')
  const topic = topics.acquire(name)
  const pending: EngineMessage[] = []
  topic.listeners.set(listener, pending)
  const close = (): void => {
    if (!topic.listeners.delete(listener)) return
    topics.release(topic)
  }
  let history: HistoryResult
  try {
    await topic.ready
    history = await engine.history(name, since)
  } catch (err) {
    close()
    throw err
  }
  for (const message of history.messages) topics.guarded(() => listener.onMessage(message))
  for (const message of pending)
    if (!covers(history.position, message)) topics.guarded(() => listener.onMessage(message))
  if (topic.listeners.has(listener)) topic.listeners.set(listener, undefined)
  return { recovered: since === undefined || history.recovered, position: history.position, close }
}
