import type { Engine, EngineListener } from './engine.js'

/**
 * `publishVolatile` of an engine for one process: straight to the listener when this node subscribes
 * to the topic (nothing to store, no other node to reach). `assertOpen` throws once the engine closed.
 */
export const localVolatile = (
  listener: () => EngineListener | undefined,
  subscribed: (topic: string) => boolean,
  assertOpen: () => void,
): Pick<Engine, 'publishVolatile'> => ({
  publishVolatile: async (topic, data, options = {}) => {
    assertOpen()
    if (!subscribed(topic)) return
    const { origin } = options
    listener()?.onVolatile?.(origin === undefined ? { topic, data } : { topic, data, origin })
  },
})
