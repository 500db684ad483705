// Type tests (`vitest --typecheck`): what upgradeWebSocket() keeps of Hono's types.
import { createApp } from '@flumen/core'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { hc } from 'hono/client'
import { describe, expectTypeOf, it } from 'vitest'
import type { WebSocketRoute, WsPeer } from './index.js'
import { upgradeWebSocket } from './index.js'

interface Member {
  id: string
}
type MemberEnv = { Variables: { user: Member } }

describe('upgradeWebSocket()', () => {
  it("carries Hono's outputFormat 'ws': hc gives the route a $ws(), in a plain Hono and in createApp()", () => {
    const route = upgradeWebSocket(() => ({}))
    const plain = new Hono().get('/ws', route).get('/http', (c) => c.text('hi'))
    const client = hc<typeof plain>('http://localhost')
    expectTypeOf(client.ws.$ws).toBeFunction()
    // @ts-expect-error an HTTP route has no $ws()
    client.http.$ws()
    const flumen = createApp().get(
      '/live',
      upgradeWebSocket(() => ({})),
    )
    expectTypeOf(hc<typeof flumen>('http://localhost').live.$ws).toBeFunction()
  })

  it('types the user of the route from its Env: c.var.user, peer.user and the route peers', () => {
    const route = upgradeWebSocket<MemberEnv>((c) => {
      expectTypeOf(c.var.user).toEqualTypeOf<Member>()
      return {
        onMessage: (_event, ws) => {
          expectTypeOf(ws.peer).toEqualTypeOf<WsPeer<Member>>()
          expectTypeOf(ws.peer.user.id).toEqualTypeOf<string>()
        },
      }
    })
    expectTypeOf(route).toExtend<WebSocketRoute<MemberEnv>>()
    for (const peer of route.peers) expectTypeOf(peer.user).toEqualTypeOf<Member>()
  })

  it('infers the Env from an annotated createEvents', () => {
    const route = upgradeWebSocket((_c: Context<MemberEnv>) => ({
      onOpen: (_event, ws) => {
        expectTypeOf(ws.peer.user).toEqualTypeOf<Member>()
      },
    }))
    for (const peer of route.peers) expectTypeOf(peer.user).toEqualTypeOf<Member>()
  })

  it('leaves the user unknown when nothing says what it is', () => {
    const route = upgradeWebSocket(() => ({}))
    for (const peer of route.peers) expectTypeOf(peer.user).toBeUnknown()
  })

  it('reports a misspelt or mistyped option', () => {
    // @ts-expect-error `maxPayLoad` is not an option
    upgradeWebSocket(() => ({}), { maxPayLoad: 1024 })
    // @ts-expect-error maxPayload is a number of bytes
    upgradeWebSocket(() => ({}), { maxPayload: '1mb' })
    // @ts-expect-error heartbeat takes intervalMs, not interval
    upgradeWebSocket(() => ({}), { heartbeat: { interval: 1000 } })
  })
})
