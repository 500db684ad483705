// Type tests (`vitest --typecheck`): what the hub's options and methods promise about types.
import type { Peer } from '@flumen/core'
import { describe, expectTypeOf, it } from 'vitest'
import type { StandardSchemaV1 } from './index.js'
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
