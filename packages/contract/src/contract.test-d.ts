import * as v from 'valibot'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import type {
  MessageInputOf,
  MessageOf,
  MethodArgumentOf,
  MethodInputOf,
  MethodName,
  MethodOutputOf,
  PatternOf,
  PresenceOf,
  PublishInputOf,
  TopicName,
} from './contract.js'
import { defineContract } from './contract.js'

const contract = defineContract({
  topics: {
    'room:{id}': {
      message: z.object({ text: z.string(), at: z.string().transform((at) => new Date(at)) }),
      publish: v.object({ text: v.string() }),
      presence: v.object({ id: v.string(), name: v.string() }),
    },
    'user:{id}': { message: v.object({ received: v.number() }) },
    dashboard: { message: z.object({ ws: z.number() }) },
  },
  methods: {
    'chat.send': { input: z.object({ text: z.string() }), output: z.object({ offset: z.number() }) },
  },
})
type C = typeof contract

describe('contract types', () => {
  it('names topics from patterns', () => {
    expectTypeOf<TopicName<C>>().toEqualTypeOf<`room:${string}` | `user:${string}` | 'dashboard'>()
    expectTypeOf<PatternOf<C, 'room:42'>>().toEqualTypeOf<'room:{id}'>()
    expectTypeOf<PatternOf<C, 'dashboard'>>().toEqualTypeOf<'dashboard'>()
    expectTypeOf<PatternOf<C, 'nope'>>().toBeNever()
    expectTypeOf(contract.topic('room:{id}', { id: 'x' })).toEqualTypeOf<`room:${string}`>()
  })

  it('types messages by schema output, publishes by schema input', () => {
    expectTypeOf<MessageOf<C, 'room:42'>>().toEqualTypeOf<{ text: string; at: Date }>()
    expectTypeOf<MessageInputOf<C, 'room:42'>>().toEqualTypeOf<{ text: string; at: string }>()
    expectTypeOf<PublishInputOf<C, `room:${string}`>>().toEqualTypeOf<{ text: string }>()
    expectTypeOf<PublishInputOf<C, 'dashboard'>>().toEqualTypeOf<{ ws: number }>()
    expectTypeOf<MessageOf<C, 'user:u1'>>().toEqualTypeOf<{ received: number }>()
    expectTypeOf<PresenceOf<C, 'room:1'>>().toEqualTypeOf<{ id: string; name: string }>()
    expectTypeOf<PresenceOf<C, 'dashboard'>>().toBeUnknown()
  })

  it('types methods both ways', () => {
    expectTypeOf<MethodName<C>>().toEqualTypeOf<'chat.send'>()
    expectTypeOf<MethodInputOf<C, 'chat.send'>>().toEqualTypeOf<{ text: string }>()
    expectTypeOf<MethodArgumentOf<C, 'chat.send'>>().toEqualTypeOf<{ text: string }>()
    expectTypeOf<MethodOutputOf<C, 'chat.send'>>().toEqualTypeOf<{ offset: number }>()
  })
})
