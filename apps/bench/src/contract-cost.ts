// `npm run contract-cost -w @flumen/bench`: what a contract's runtime check costs per message, for
// docs/typed-channels.md. On a client every received message is checked once; on the server every
// publish (not every delivery). A chat message of the demo's shape, checked by zod 4 and valibot 1,
// beside JSON.parse of the same message (what receiving it costs anyway).
import { createHub } from '@flumen/broadcast'
import { check, defineContract } from '@flumen/contract'
import * as v from 'valibot'
import { z } from 'zod'

const quick = process.argv.includes('--quick')
const rounds = quick ? 50_000 : 500_000

const message = {
  type: 'chat' as const,
  id: 'u_3k2j1h:c_9f8e7d',
  from: { id: 'u_3k2j1h', name: 'alice' },
  text: 'The deploy is done: history survived the restart, nobody got a reset.',
  at: 1_764_590_400_000,
}
const text = JSON.stringify(message)

const zodChat = z.object({
  type: z.literal('chat'),
  id: z.string(),
  from: z.object({ id: z.string(), name: z.string() }),
  text: z.string().min(1).max(2000),
  at: z.number(),
})
const valibotChat = v.object({
  type: v.literal('chat'),
  id: v.string(),
  from: v.object({ id: v.string(), name: v.string() }),
  text: v.pipe(v.string(), v.minLength(1), v.maxLength(2000)),
  at: v.number(),
})

/** Nanoseconds per call of `run`, the best of three. */
const nsPer = (run: () => unknown): number => {
  let best = Number.POSITIVE_INFINITY
  for (let attempt = 0; attempt < 3; attempt++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < rounds; i++) run()
    best = Math.min(best, Number(process.hrtime.bigint() - started) / rounds)
  }
  return best
}

const parsed = JSON.parse(text) as unknown
const rows: [string, number][] = [
  ['JSON.parse of the message (reference)', nsPer(() => JSON.parse(text))],
  ['zod 4 check', nsPer(() => check(zodChat, parsed))],
  ['valibot 1 check', nsPer(() => check(valibotChat, parsed))],
]

/** Publishes per second through hub.publish (memory engine, nobody subscribed). */
const publishRate = async (withContract: 'none' | 'zod' | 'valibot'): Promise<number> => {
  const contract =
    withContract === 'zod'
      ? defineContract({ topics: { 'room:{id}': { message: zodChat } } })
      : withContract === 'valibot'
        ? defineContract({ topics: { 'room:{id}': { message: valibotChat } } })
        : undefined
  const hub = createHub({ presence: false, ...(contract && { contract }) })
  const count = quick ? 20_000 : 200_000
  const started = performance.now()
  for (let i = 0; i < count; i += 100)
    await Promise.all(Array.from({ length: 100 }, (_, j) => hub.publish(`room:${(i + j) % 50}`, message)))
  const rate = count / ((performance.now() - started) / 1000)
  await hub.engine.close()
  return rate
}

console.log('| per message | ns | vs JSON.parse |')
console.log('| --- | --- | --- |')
const reference = rows[0]![1]
for (const [label, ns] of rows)
  console.log(`| ${label} | ${Math.round(ns)} | ${(ns / reference).toFixed(2)}x |`)
console.log('')
console.log('| hub.publish (memory engine) | publishes/s | ratio |')
console.log('| --- | --- | --- |')
const none = await publishRate('none')
for (const [label, rate] of [
  ['no contract (reference)', none],
  ['contract, zod 4', await publishRate('zod')],
  ['contract, valibot 1', await publishRate('valibot')],
] as const)
  console.log(`| ${label} | ${Math.round(rate).toLocaleString('en')} | ${(rate / none).toFixed(2)}x |`)
