// Type tests (`vitest --typecheck`): what a contract gives the client's subscribe, publish, call,
// presence and SSE reader; without one, the client keeps its caller-typed signatures.
import { defineContract } from '@flumen/contract'
import * as v from 'valibot'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import type { Client, MessageMeta } from './node.js'
import { createClient, openEventStream } from './node.js'

const contract = defineContract({
  topics: {
    'room:{id}': {
      message: z.object({ text: z.string(), at: z.string().transform((at) => new Date(at)) }),
      publish: v.object({ text: v.string() }),
      presence: v.object({ id: v.string(), name: v.string() }),
    },
    dashboard: { message: v.object({ ws: v.number() }) },
  },
  methods: {
    'chat.send': { input: z.object({ text: z.string() }), output: z.object({ offset: z.number() }) },
  },
})

describe('createClient({ contract })', () => {
  const client = createClient({ url: 'ws://x', contract })

  it('infers messages from the topic, patterns included', () => {
    expectTypeOf(client).toEqualTypeOf<Client<typeof contract>>()
    const id = 'x' as string
    client.subscribe(`room:${id}`, (message, meta) => {
      expectTypeOf(message).toEqualTypeOf<{ text: string; at: Date }>()
      expectTypeOf(meta).toEqualTypeOf<MessageMeta>()
      if (meta.volatile) expectTypeOf(meta.offset).toEqualTypeOf<undefined>()
      else expectTypeOf(meta.offset).toEqualTypeOf<number>()
    })
    client.subscribe('dashboard', (tick) => expectTypeOf(tick).toEqualTypeOf<{ ws: number }>())
    client.subscribe(contract.topic('room:{id}', { id }), (message) =>
      expectTypeOf(message.at).toEqualTypeOf<Date>(),
    )
    // @ts-expect-error not a topic of the contract
    client.subscribe('lobby', () => {})
    // @ts-expect-error 'room:' + id is a string to TypeScript: write `room:${id}` or contract.topic()
    client.subscribe('room:' + id, () => {})
  })

  it('types publishes by the publish schema, calls both ways, presence by its schema', () => {
    void client.publish('room:1', { text: 'hi' })
    // @ts-expect-error text is a string
    void client.publish('room:1', { text: 1 })
    void client.publish('dashboard', { ws: 1 })
    expectTypeOf(client.publish('room:1', { text: 'hi' })).resolves.toEqualTypeOf<number>()
    expectTypeOf(
      client.publish('room:1', { text: 'hi' }, { volatile: true }),
    ).resolves.toEqualTypeOf<boolean>()
    // @ts-expect-error a volatile publish is never queued, so it has no timeout
    void client.publish('room:1', { text: 'hi' }, { volatile: true, timeoutMs: 10 })
    expectTypeOf(client.call('chat.send', { text: 'hi' })).resolves.toEqualTypeOf<{ offset: number }>()
    // @ts-expect-error the input is { text: string }
    void client.call('chat.send', { body: 'hi' })
    // @ts-expect-error not a method of the contract
    void client.call('chat.other', {})
    expectTypeOf(client.presence('room:1')).toEqualTypeOf<{ id: string; name: string }[]>()
  })

  it('narrows SSE messages by pattern', async () => {
    for await (const event of openEventStream('http://x/sse', { contract })) {
      if (event.message?.pattern === 'room:{id}') expectTypeOf(event.message.data.at).toEqualTypeOf<Date>()
      else if (event.message) expectTypeOf(event.message.data).toEqualTypeOf<{ ws: number }>()
    }
  })

  it('keeps caller-typed signatures without a contract', () => {
    const plain = createClient({ url: 'ws://x' })
    plain.subscribe<{ n: number }>('anything', (data) => expectTypeOf(data).toEqualTypeOf<{ n: number }>())
    expectTypeOf(plain.call<number>('add', { a: 1 })).resolves.toBeNumber()
    expectTypeOf(plain.presence('x')).toEqualTypeOf<unknown[]>()
  })
})
