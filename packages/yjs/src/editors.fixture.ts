// Test fixture: a node (hub + yjs + WebSocket route) and real clients with Y.Docs bound to it.
import type { Engine, Hub } from '@flumen/broadcast'
import { createHub } from '@flumen/broadcast'
import type { Client } from '@flumen/client'
import { createClient } from '@flumen/client/node'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { waitFor } from '@flumen/testing'
import { afterEach } from 'vitest'
import * as Y from 'yjs'
import type { YjsOptions } from './options.js'
import type { YjsProvider } from './provider.js'
import { yjsProvider } from './provider.js'
import type { YjsServer } from './server.js'
import { yjs } from './server.js'

type User = { id: string; name: string }
type Env = { Bindings: FlumenBindings; Variables: { user: User } }

export interface TestNode {
  hub: Hub<User>
  docs: YjsServer
  server: FlumenServer
  url: string
  /** Users whose connections are refused (503) while in here: offline, as far as they know. */
  blocked: Set<string>
  logged: unknown[]
  close(): Promise<void>
}

export const startNode = async (
  options: {
    engine?: Engine
    port?: number
    yjs?: Omit<YjsOptions<User>, 'hub'>
    /** Leave yjs out of the server's plugins: it saves nothing at close, as after a crash. */
    crash?: boolean
  } = {},
): Promise<TestNode> => {
  const logged: unknown[] = []
  const hub = createHub<User>({
    ...(options.engine && { engine: options.engine }),
    logError: (e) => logged.push(e),
  })
  const docs = yjs({ hub, logError: (e) => logged.push(e), ...options.yjs })
  const blocked = new Set<string>()
  const app = createApp<Env>()
  app.use('/ws', async (c, next) => {
    const id = c.req.query('user') ?? 'anonymous'
    if (blocked.has(id)) return c.json({ error: { code: 'UNAVAILABLE', message: 'offline' } }, 503)
    c.set('user', { id, name: id })
    await next()
  })
  app.get('/ws', hub.websocket())
  const server = await serve(app, {
    port: options.port ?? 0,
    hostname: '127.0.0.1',
    plugins: options.crash ? [hub] : [hub, docs],
  })
  return {
    hub,
    docs,
    server,
    url: `ws://127.0.0.1:${server.port}/ws`,
    blocked,
    logged,
    close: async () => {
      // After a crash nothing is saved: the documents' timer (unref'd) dies with the engine.
      await server.close({ timeoutMs: 200 })
    },
  }
}

export interface Editor {
  client: Client
  doc: Y.Doc
  text: Y.Text
  provider: YjsProvider
  errors: Error[]
  close(): Promise<void>
}

export const openEditor = async (url: string, user: string, document = 'notes'): Promise<Editor> => {
  const client = createClient({ url: `${url}?user=${user}`, retryDelayMs: () => 50, keepAlive: false })
  const doc = new Y.Doc()
  const provider = yjsProvider(client, document, doc)
  const errors: Error[] = []
  provider.on('error', (err) => errors.push(err))
  return {
    client,
    doc,
    text: doc.getText('text'),
    provider,
    errors,
    close: async () => {
      await provider.destroy()
      await client.close()
      doc.destroy()
    },
  }
}

/** Waits until every editor's text is `expected` (or, without it, until they all agree). */
export const converged = async (editors: Editor[], expected?: string, timeoutMs = 5_000): Promise<string> => {
  await waitFor(
    () => {
      const texts = editors.map((e) => e.text.toString())
      return texts.every((t) => t === (expected ?? texts[0]))
    },
    timeoutMs,
    `texts differ: ${JSON.stringify(editors.map((e) => e.text.toString()))}`,
  )
  return editors[0]!.text.toString()
}

/** What a test file opens, closed after each test (newest first). */
export const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A node closed after the test. */
export const node = async (...args: Parameters<typeof startNode>): Promise<TestNode> => {
  const started = await startNode(...args)
  cleanups.push(() => started.close())
  return started
}

/** A synced editor, closed after the test. */
export const editor = async (url: string, user: string, document?: string): Promise<Editor> => {
  const opened = await openEditor(url, user, document)
  cleanups.push(() => opened.close())
  await opened.provider.whenSynced()
  return opened
}
