// Type tests (`vitest --typecheck`): what a route, a hub callback and `hc` know about the user
// that auth() puts in `c.var.user`. They fail when inference regresses, not at run time.
import type { Hub } from '@flumen/broadcast'
import { createHub } from '@flumen/broadcast'
import type { Peer } from '@flumen/core'
import { createApp } from '@flumen/core'
import { upgradeWebSocket } from '@flumen/ws'
import { Hono } from 'hono'
import { hc } from 'hono/client'
import { describe, expectTypeOf, it } from 'vitest'
import type { AuthEnv, AuthUser, AuthVariables } from './index.js'
import { auth, jwt, topicRules } from './index.js'

const strategies = [jwt({ secret: 'a-type-test-secret-that-is-32-bytes-long' })]
const required = auth({ strategies })
const optional = auth({ strategies, optional: true })

describe('c.var.user on HTTP routes', () => {
  it('is the AuthUser after auth() in the chain', () => {
    new Hono().get('/me', required, (c) => {
      expectTypeOf(c.var.user).toEqualTypeOf<AuthUser>()
      expectTypeOf(c.var.authExpiresAt).toEqualTypeOf<number | undefined>()
      return c.json({ id: c.var.user.id })
    })
  })

  it('is AuthUser | undefined after an optional auth()', () => {
    new Hono().get('/hello', optional, (c) => {
      expectTypeOf(c.var.user).toEqualTypeOf<AuthUser | undefined>()
      return c.text(c.var.user?.name ?? 'stranger')
    })
  })

  it('is absent on a route without auth(), in a plain Hono and in createApp()', () => {
    new Hono().get('/open', (c) => {
      // @ts-expect-error no auth() before this route: there is no user to read
      return c.text(c.var.user.id)
    })
    createApp().get('/open', (c) => {
      // @ts-expect-error createApp() does not promise a user either
      return c.text(c.var.user.id)
    })
  })

  it('is typed on every route of an app declared with AuthEnv', () => {
    createApp<AuthEnv>()
      .use(required)
      .get('/me', (c) => {
        expectTypeOf(c.var).toExtend<AuthVariables>()
        return c.json(c.var.user)
      })
  })
})

describe('the user on live routes and in the hub', () => {
  it('reaches authorize, methods, presence, authenticate and peers through createHub<AuthUser>()', () => {
    const hub = createHub<AuthUser>({
      authorize: (request) => {
        expectTypeOf(request.user).toEqualTypeOf<AuthUser>()
        expectTypeOf(request.peer).toEqualTypeOf<Peer<AuthUser>>()
        return request.user.roles?.includes('admin') ?? false
      },
      presence: {
        identify: (user) => {
          expectTypeOf(user).toEqualTypeOf<AuthUser>()
          return { id: user.id, info: { name: user.name } }
        },
      },
      authenticate: required.verifyToken,
    })
    hub.method('whoami', (_data, { user, peer }) => {
      expectTypeOf(user).toEqualTypeOf<AuthUser>()
      expectTypeOf(peer.user).toEqualTypeOf<AuthUser>()
      return user.id
    })
    const websocket = hub.websocket()
    for (const peer of websocket.peers) expectTypeOf(peer.user).toEqualTypeOf<AuthUser>()
    for (const stream of hub.sse().peers) expectTypeOf(stream.user).toEqualTypeOf<AuthUser>()
    new Hono().get('/ws', required, websocket).get('/sse', required, hub.sse())
  })

  it('refuses an authenticate that does not return the hub’s user', () => {
    createHub<AuthUser>({
      // @ts-expect-error a string is not an AuthUser
      authenticate: async (token: string) => token,
    })
  })

  it('keeps topicRules usable as the authorize of a typed hub', () => {
    createHub<AuthUser>({ authorize: topicRules({ 'user:{id}': ['subscribe'] }) })
  })

  it('types peer.user of upgradeWebSocket<AuthEnv>() and its events', () => {
    upgradeWebSocket<AuthEnv>((c) => {
      expectTypeOf(c.var.user).toEqualTypeOf<AuthUser>()
      return {
        onOpen: (_event, ws) => {
          expectTypeOf(ws.peer.user).toEqualTypeOf<AuthUser>()
        },
      }
    })
  })

  it('lets a Hub<AuthUser> be passed where any hub is taken', () => {
    const anyHub = (hub: Hub): string => hub.name
    anyHub(createHub<AuthUser>())
  })
})

describe('hc', () => {
  it('gives a WebSocket route of the hub a $ws(), and plain routes none', () => {
    const hub = createHub<AuthUser>()
    const app = new Hono()
      .get('/ws', required, hub.websocket())
      .get('/me', required, (c) => c.json({ id: c.var.user.id }))
    const client = hc<typeof app>('http://localhost')
    expectTypeOf(client.ws.$ws).toBeFunction()
    expectTypeOf(client.ws.$ws).returns.toEqualTypeOf<WebSocket>()
    // @ts-expect-error an HTTP route has no $ws()
    client.me.$ws()
  })
})

describe('options', () => {
  it('reports a misspelt or mistyped option', () => {
    // @ts-expect-error `optionl` is not an option
    auth({ strategies, optionl: true })
    // @ts-expect-error realm is a string
    auth({ strategies, realm: 1 })
    // @ts-expect-error strategies are required
    auth({})
  })
})
