// Type tests (`vitest --typecheck`): what sse() keeps of Hono's types.
import { Hono } from 'hono'
import { describe, expectTypeOf, it } from 'vitest'
import type { SsePeer } from './index.js'
import { sse } from './index.js'

interface Member {
  id: string
}
type MemberEnv = { Variables: { user: Member } }

describe('sse()', () => {
  it('types the stream user from the route Env, and mounts in a plain Hono', () => {
    const route = sse<MemberEnv>((stream, c) => {
      expectTypeOf(stream).toEqualTypeOf<SsePeer<Member>>()
      expectTypeOf(c.var.user).toEqualTypeOf<Member>()
      stream.sendEvent({ event: 'hello', data: stream.user.id })
    })
    for (const peer of route.peers) expectTypeOf(peer.user).toEqualTypeOf<Member>()
    new Hono().get('/events', route)
  })

  it('reports a misspelt or mistyped option', () => {
    // @ts-expect-error `heartbeat` is spelt heartbeatMs
    sse(() => {}, { heartbeat: 1000 })
    // @ts-expect-error heartbeatMs is a number or false
    sse(() => {}, { heartbeatMs: true })
  })
})
