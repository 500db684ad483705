import type { FlumenEnv } from '@flumen/core'
import { createApp } from '@flumen/core'
import type { Hono } from 'hono'
import { secureHeaders } from 'hono/secure-headers'

/** The demo app; later issues add rooms, presence, uploads and the dashboard. */
export const buildApp = (): Hono<FlumenEnv> => {
  const app = createApp()
  app.use('*', secureHeaders())
  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/', (c) =>
    c.html(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Flumen Rooms</title></head>' +
        '<body><h1>Flumen Rooms</h1><p>The server is running.</p></body></html>',
    ),
  )
  return app
}
