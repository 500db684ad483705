// The engine behind Redis Sentinel (a master, a replica, a Sentinel), through a failover.

import type { EngineMessage } from '@flumen/broadcast'
import type { SentinelSetup } from '@flumen/testing'
import { requireRedis, startSentinel, uniquePrefix, waitFor } from '@flumen/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisEngine } from './index.js'

const available = await requireRedis()

describe.skipIf(!available)('redisEngine behind Sentinel', () => {
  let setup: SentinelSetup
  beforeAll(async () => {
    setup = await startSentinel()
  }, 60_000)
  afterAll(async () => {
    await setup?.destroy()
  })

  it('follows a failover: publishes resume on the new master and reach subscribers once, in order', async () => {
    const prefix = uniquePrefix()
    const options = {
      sentinel: {
        sentinels: setup.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        name: setup.name,
      },
      prefix,
      positionCheckMs: 200,
      logError: () => {},
    }
    const publisher = redisEngine(options)
    const subscriber = redisEngine(options)
    try {
      expect(publisher.topology).toBe('sentinel')
      const received: EngineMessage[] = []
      subscriber.attach({ onMessage: (message) => received.push(message), onPresence: () => {} })
      await subscriber.subscribe('feed')
      const acked: EngineMessage[] = []
      const ackedAt: number[] = []
      let running = true
      const publishing = (async () => {
        for (let i = 0; running; i++) {
          try {
            acked.push(await publisher.publish('feed', String(i)))
            ackedAt.push(Date.now())
          } catch {
            // UNAVAILABLE while there is no master
          }
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      })()
      await waitFor(() => acked.length >= 100)
      const killedAt = Date.now()
      const before = acked.length
      await setup.master.stop()
      await waitFor(() => acked.length > before + 100, 30_000)
      running = false
      await publishing
      const resumedAfter = (ackedAt.find((at) => at > killedAt + 50) ?? Number.NaN) - killedAt
      console.log(`sentinel failover: publishing resumed ${resumedAfter} ms after the master was killed`)
      expect(await setup.currentMaster()).toBe(setup.replica.port)
      await waitFor(() => received.at(-1)?.data === acked.at(-1)!.data, 10_000)
      const keys = received.map((message) => `${message.epoch}:${message.offset}`)
      expect(new Set(keys).size).toBe(keys.length)
      // The replica had every acknowledged write (or the loss shows as a new epoch).
      if (new Set(received.map((message) => message.epoch)).size === 1) {
        const delivered = new Set(received.map((message) => message.data))
        expect(acked.filter((ack) => !delivered.has(ack.data))).toEqual([])
      }
    } finally {
      await Promise.all([publisher.close(), subscriber.close()])
    }
  }, 60_000)
})
