// The engine conformance suite: the contract every Engine must keep, run against a real one.
// memoryEngine() runs it here; @flumen/broadcast-redis runs it unchanged.

import type { Engine, EngineMessage, PresenceChange, VolatileMessage } from '@flumen/broadcast'
import { afterEach, describe, expect, it } from 'vitest'

export interface EngineHarness {
  name: string
  /** A fresh engine with history bounded to `historySize` messages per topic. */
  create(options: { historySize: number }): Engine | Promise<Engine>
  /**
   * A second engine on the same backing store (another node), when the engine is shared;
   * omit it for single-process engines.
   */
  createPeerNode?(options: { historySize: number }): Engine | Promise<Engine>
}

interface Seen {
  messages: EngineMessage[]
  volatile: VolatileMessage[]
  presence: PresenceChange[]
}

const collect = (engine: Engine): Seen => {
  const seen: Seen = { messages: [], volatile: [], presence: [] }
  engine.attach({
    onMessage: (m) => seen.messages.push(m),
    onVolatile: (m) => seen.volatile.push(m),
    onPresence: (p) => seen.presence.push(p),
  })
  return seen
}

const eventually = async (check: () => void, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      check()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

let topicCounter = 0
/** A topic no other test (or earlier run against a shared store) used. */
const freshTopic = (): string => `conformance:${process.pid}:${Date.now()}:${topicCounter++}`

/** Registers the suite with Vitest for one engine. */
export const describeEngineConformance = (harness: EngineHarness): void => {
  describe(`engine conformance: ${harness.name}`, () => {
    const engines: Engine[] = []
    const create = async (historySize = 100): Promise<Engine> => {
      const engine = await harness.create({ historySize })
      engines.push(engine)
      return engine
    }
    afterEach(async () => {
      await Promise.all(engines.splice(0).map((engine) => engine.close()))
    })

    it('assigns increasing offsets within one epoch and delivers to subscribers', async () => {
      const engine = await create()
      const seen = collect(engine)
      const topic = freshTopic()
      await engine.subscribe(topic)
      const first = await engine.publish(topic, '{"n":1}')
      const second = await engine.publish(topic, '"two"', { origin: 'peer-a' })
      expect(second.epoch).toBe(first.epoch)
      expect(second.offset).toBe(first.offset + 1)
      await eventually(() => expect(seen.messages.map((m) => m.data)).toEqual(['{"n":1}', '"two"']))
      expect(seen.messages[1]!.origin).toBe('peer-a')
      expect(seen.messages[0]!.origin).toBeUndefined()
    })

    it('stores a publish with an idempotency key once: the same key again answers its position', async () => {
      const engine = await create()
      const seen = collect(engine)
      const topic = freshTopic()
      await engine.subscribe(topic)
      const first = await engine.publish(topic, '"once"', { key: 'client-1:k1' })
      const again = await engine.publish(topic, '"once"', { key: 'client-1:k1' })
      const other = await engine.publish(topic, '"other"', { key: 'client-1:k2' })
      const unkeyed = await engine.publish(topic, '"free"')
      expect({ epoch: again.epoch, offset: again.offset }).toEqual({
        epoch: first.epoch,
        offset: first.offset,
      })
      expect([other.offset, unkeyed.offset]).toEqual([first.offset + 1, first.offset + 2])
      await eventually(() =>
        expect(seen.messages.map((m) => m.data)).toEqual(['"once"', '"other"', '"free"']),
      )
      const history = await engine.history(topic, { epoch: first.epoch, offset: first.offset - 1 })
      expect(history.messages.map((m) => m.data)).toEqual(['"once"', '"other"', '"free"'])
    })

    it('does not deliver topics the node is not subscribed to, nor after unsubscribe', async () => {
      const engine = await create()
      const seen = collect(engine)
      const topic = freshTopic()
      await engine.publish(topic, '1')
      await engine.subscribe(topic)
      await engine.unsubscribe(topic)
      await engine.publish(topic, '2')
      const other = freshTopic()
      await engine.subscribe(other)
      await engine.publish(other, '3')
      await eventually(() => expect(seen.messages.map((m) => m.data)).toEqual(['3']))
    })

    it('returns exactly the messages after a position, in order', async () => {
      const engine = await create()
      const topic = freshTopic()
      const stored: EngineMessage[] = []
      for (let i = 1; i <= 10; i++) stored.push(await engine.publish(topic, String(i)))
      const since = { epoch: stored[3]!.epoch, offset: stored[3]!.offset }
      const result = await engine.history(topic, since)
      expect(result.recovered).toBe(true)
      expect(result.messages.map((m) => m.data)).toEqual(['5', '6', '7', '8', '9', '10'])
      expect(result.position).toEqual({ epoch: stored[9]!.epoch, offset: stored[9]!.offset })
      const upToDate = await engine.history(topic, result.position)
      expect(upToDate).toMatchObject({ recovered: true, messages: [] })
      const current = await engine.history(topic)
      expect(current).toMatchObject({ recovered: true, messages: [], position: result.position })
    })

    it('reports recovered:false when the gap left the window or the epoch is unknown', async () => {
      const engine = await create(5)
      const topic = freshTopic()
      const first = await engine.publish(topic, '0')
      for (let i = 1; i < 20; i++) await engine.publish(topic, String(i))
      const lost = await engine.history(topic, { epoch: first.epoch, offset: first.offset })
      expect(lost.recovered).toBe(false)
      expect(lost.messages).toEqual([])
      const wrongEpoch = await engine.history(topic, { epoch: 'not-this-one', offset: 1 })
      expect(wrongEpoch.recovered).toBe(false)
      const future = await engine.history(topic, { epoch: first.epoch, offset: first.offset + 1000 })
      expect(future.recovered).toBe(false)
      const inWindow = await engine.history(topic, { epoch: first.epoch, offset: lost.position.offset - 3 })
      expect(inWindow.recovered).toBe(true)
      expect(inWindow.messages).toHaveLength(3)
    })

    it('counts the messages it keeps for a topic (historyLength), when it can', async () => {
      const engine = await create(5)
      if (!engine.historyLength) return
      const topic = freshTopic()
      expect(await engine.historyLength(topic)).toBe(0)
      for (let i = 1; i <= 3; i++) await engine.publish(topic, String(i))
      expect(await engine.historyLength(topic)).toBe(3)
      for (let i = 4; i <= 20; i++) await engine.publish(topic, String(i))
      const kept = await engine.historyLength(topic)
      expect(kept).toBeGreaterThanOrEqual(1)
      expect(kept).toBeLessThanOrEqual(5)
    })

    it('keeps snapshots beside the streams, when it can (loadSnapshot, saveSnapshot)', async () => {
      const engine = await create(2)
      if (!engine.loadSnapshot || !engine.saveSnapshot) return
      const key = freshTopic()
      expect(await engine.loadSnapshot(key)).toBeUndefined()
      await engine.saveSnapshot(key, 'first')
      await engine.saveSnapshot(key, 'second, with {"json": true} and ✓')
      // Past the history window of its topic, a snapshot stays.
      for (let i = 1; i <= 5; i++) await engine.publish(key, String(i))
      expect(await engine.loadSnapshot(key)).toBe('second, with {"json": true} and ✓')
      expect(await engine.loadSnapshot(`${key}-other`)).toBeUndefined()
    })

    it('recovers the first messages of a topic from the position it had before any', async () => {
      const engine = await create()
      const topic = freshTopic()
      const empty = await engine.history(topic)
      expect(empty).toMatchObject({ recovered: true, messages: [] })
      expect(await engine.history(topic)).toEqual(empty) // reading twice gives the same position
      for (let i = 1; i <= 3; i++) await engine.publish(topic, String(i))
      const caughtUp = await engine.history(topic, empty.position)
      expect(caughtUp.recovered).toBe(true)
      expect(caughtUp.messages.map((m) => m.data)).toEqual(['1', '2', '3'])
    })

    it('delivers volatile messages to subscribers without storing them or taking an offset', async () => {
      const engine = await create()
      const seen = collect(engine)
      const topic = freshTopic()
      const elsewhere = freshTopic()
      await engine.subscribe(topic)
      const before = await engine.publish(topic, '"stored"')
      await engine.publishVolatile(topic, '{"typing":true}', { origin: 'peer-a' })
      await engine.publishVolatile(topic, '"a|b"')
      await engine.publishVolatile(elsewhere, '"nobody here"')
      const after = await engine.publish(topic, '"stored again"')
      expect(after.offset).toBe(before.offset + 1)
      await eventually(() =>
        expect(seen.volatile).toEqual([
          { topic, data: '{"typing":true}', origin: 'peer-a' },
          { topic, data: '"a|b"' },
        ]),
      )
      await eventually(() => expect(seen.messages.map((m) => m.data)).toEqual(['"stored"', '"stored again"']))
      const history = await engine.history(topic, { epoch: before.epoch, offset: before.offset - 1 })
      expect(history.messages.map((m) => m.data)).toEqual(['"stored"', '"stored again"'])
      await engine.unsubscribe(topic)
      await engine.publishVolatile(topic, '"after unsubscribe"')
      await engine.publish(topic, '"marker"')
      await engine.subscribe(elsewhere)
      await engine.publishVolatile(elsewhere, '"now here"')
      await eventually(() => expect(seen.volatile.map((m) => m.data)).toContain('"now here"'))
      expect(seen.volatile.map((m) => m.data)).not.toContain('"after unsubscribe"')
      expect(seen.volatile.map((m) => m.data)).not.toContain('"nobody here"')
    })

    it('tracks presence per connection and reports joins and leaves', async () => {
      const engine = await create()
      const seen = collect(engine)
      const topic = freshTopic()
      await engine.subscribe(topic)
      await engine.presenceAdd(topic, { connectionId: 'c1', userId: 'u1', info: { id: 'u1' } })
      await engine.presenceAdd(topic, { connectionId: 'c2', userId: 'u1', info: { id: 'u1' } })
      const members = await engine.presenceList(topic)
      expect(members.map((m) => m.connectionId).sort()).toEqual(['c1', 'c2'])
      await engine.presenceRemove(topic, 'c1')
      await engine.presenceRemove(topic, 'unknown')
      expect((await engine.presenceList(topic)).map((m) => m.connectionId)).toEqual(['c2'])
      await eventually(() => {
        expect(seen.presence.flatMap((p) => p.join ?? []).map((m) => m.connectionId)).toEqual(['c1', 'c2'])
        expect(seen.presence.flatMap((p) => p.leave ?? []).map((m) => m.connectionId)).toEqual(['c1'])
      })
    })

    it('refuses work after close', async () => {
      const engine = await harness.create({ historySize: 10 })
      await engine.close()
      await expect(engine.publish(freshTopic(), '1')).rejects.toThrow()
      await expect(engine.publishVolatile(freshTopic(), '1')).rejects.toThrow()
    })

    if (harness.createPeerNode) {
      const createPeerNode = harness.createPeerNode
      it('shares messages, history and presence between nodes', async () => {
        const a = await create()
        const b = await createPeerNode({ historySize: 100 })
        engines.push(b)
        const seenB = collect(b)
        const topic = freshTopic()
        await b.subscribe(topic)
        const published = await a.publish(topic, '"from a"')
        await eventually(() => expect(seenB.messages.map((m) => m.data)).toEqual(['"from a"']))
        const history = await b.history(topic, { epoch: published.epoch, offset: published.offset - 1 })
        expect(history.messages.map((m) => m.data)).toEqual(['"from a"'])
        await a.publishVolatile(topic, '"volatile from a"', { origin: 'peer-a' })
        await eventually(() =>
          expect(seenB.volatile).toEqual([{ topic, data: '"volatile from a"', origin: 'peer-a' }]),
        )
        await a.presenceAdd(topic, { connectionId: 'ca', userId: 'ua', info: null })
        expect((await b.presenceList(topic)).map((m) => m.connectionId)).toEqual(['ca'])
      })
    }
  })
}
