import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApp } from './app.js'

let server: FlumenServer | undefined
afterEach(async () => {
  await server?.close({ timeoutMs: 100 })
  server = undefined
})

describe('demo', () => {
  it('answers /healthz', async () => {
    server = await serve(buildApp(), { port: 0, hostname: '127.0.0.1' })
    const res = await fetch(new URL('/healthz', server.url))
    expect(await res.json()).toEqual({ status: 'ok' })
  })
})
