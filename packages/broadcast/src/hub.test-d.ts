// Type tests (`vitest --typecheck`): what the hub's options and methods promise about types.
import { defineContract } from '@flumen/contract'
import type { Peer } from '@flumen/core'
import * as v from 'valibot'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import type { Hub, StandardSchemaV1 } from './index.js'
import { createHub } from './index.js'

interface Member {
  id: string
  team: 'red' | 'blue'
}

const roomSchema: StandardSchemaV1<unknown, { room: string }> = {
  '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value: value as { room: string } }) },
}

describe('createHub', () => {
  it('leaves the user unknown without a type argument, so it is checked before use', () => {
    createHub({
      authorize: ({ user }) => {
        expectTypeOf(user).toBeUnknown()
        return true
      },
    })
  })

  it('gives callbacks the user of createHub<User>()', () => {
    const hub = createHub<Member>({
      authorize: ({ user, peer }) => {
        expectTypeOf(peer).toEqualTypeOf<Peer<Member>>()
        return user.team === 'red'
      },
      presence: { identify: (user) => ({ id: user.id, info: user.team }) },
    })
    hub.method('team', (_data, { user }) => user.team)
    for (const peer of hub.websocket().peers) expectTypeOf(peer.user).toEqualTypeOf<Member>()
  })

  it('types method data from its Standard Schema', () => {
    createHub().method('join', (data) => expectTypeOf(data).toEqualTypeOf<{ room: string }>(), {
      schema: roomSchema,
    })
    createHub().method('free', (data) => expectTypeOf(data).toBeUnknown())
  })

  it('reports a misspelt or mistyped option', () => {
    // @ts-expect-error `authorise` is spelt authorize
    createHub({ authorise: () => true })
    // @ts-expect-error maxTopicLength is a number
    createHub({ maxTopicLength: '256' })
    // @ts-expect-error presence takes identify, not identity
    createHub({ presence: { identity: () => ({ id: '', info: null }) } })
    // @ts-expect-error the hub's websocket() takes @flumen/ws options
    createHub().websocket({ maxPayLoad: 1 })
  })
})

const contract = defineContract({
  topics: {
    'room:{id}': {
      message: z.object({ text: z.string(), from: z.string() }),
      publish: v.object({ text: v.string() }),
    },
    dashboard: { message: v.object({ ws: v.number() }) },
  },
  methods: {
    'chat.send': { input: z.object({ text: z.string() }), output: z.object({ offset: z.number() }) },
  },
})

describe('createHub({ contract })', () => {
  it('types hub.publish from the topic patterns', () => {
    const hub = createHub({ contract })
    expectTypeOf(hub).toEqualTypeOf<Hub<unknown, typeof contract>>()
    const id = 'x' as string
    void hub.publish(`room:${id}`, { text: 'hi', from: 'ann' })
    void hub.publish('dashboard', { ws: 1 })
    expectTypeOf(hub.publish('dashboard', { ws: 1 })).resolves.toEqualTypeOf<number>()
    expectTypeOf(hub.publish('dashboard', { ws: 1 }, { volatile: true })).resolves.toEqualTypeOf<undefined>()
    // @ts-expect-error a volatile publish is never stored, so it has no idempotency key
    void hub.publish('dashboard', { ws: 1 }, { volatile: true, key: 'k' })
    // @ts-expect-error from is missing
    void hub.publish('room:1', { text: 'hi' })
    // @ts-expect-error ws is a number
    void hub.publish('dashboard', { ws: '1' })
    // @ts-expect-error not a topic of the contract
    void hub.publish('lobby', {})
    // @ts-expect-error 'room:' + id widens to string in TypeScript: use a template literal or contract.topic()
    void hub.publish('room:' + id, { text: 'hi', from: 'ann' })
    void hub.publish(contract.topic('room:{id}', { id }), { text: 'hi', from: 'ann' })
  })

  it('types methods from the contract, input and result', () => {
    const hub = createHub({ contract })
    hub.method('chat.send', (input) => {
      expectTypeOf(input).toEqualTypeOf<{ text: string }>()
      return { offset: 1 }
    })
    hub.method('chat.send', async () => ({ offset: 1 }))
    // @ts-expect-error the result must be { offset: number }
    hub.method('chat.send', () => ({ offset: '1' }))
    // @ts-expect-error not a method of the contract
    hub.method('chat.other', () => null)
  })

  it('narrows beforePublish by pattern, with the user of createHub<User, typeof contract>()', () => {
    createHub<{ name: string }, typeof contract>({
      contract,
      beforePublish: (request) => {
        expectTypeOf(request.user).toEqualTypeOf<{ name: string }>()
        if (request.pattern === 'room:{id}') {
          expectTypeOf(request.data).toEqualTypeOf<{ text: string }>()
          expectTypeOf(request.topic).toEqualTypeOf<`room:${string}`>()
          return { text: request.data.text, from: request.user.name }
        }
        expectTypeOf(request.data).toEqualTypeOf<{ ws: number }>()
        return undefined
      },
    })
  })

  it('still hands a typed hub to what publishes plain data (uploads progress)', () => {
    const publisher: {
      publish(topic: string, data: unknown, options?: { volatile: true }): Promise<unknown>
    } = createHub({ contract })
    const plain: Hub = createHub()
    expectTypeOf(publisher).not.toBeAny()
    expectTypeOf(plain.publish).parameter(0).toEqualTypeOf<string>()
  })
})
