// The demo as a process: SIGTERM drains gracefully; REDIS_URL switches the engine.
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type DemoProcess, forkDemo } from '../e2e/demo-process.js'

const children: ChildProcess[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

const start = async (env: Record<string, string> = {}): Promise<DemoProcess> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'rooms-process-'))
  dirs.push(dataDir)
  const demo = await forkDemo({ DATA_DIR: dataDir, ...env })
  children.push(demo.child)
  return demo
}

const signIn = async (base: string): Promise<string> => {
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"pat"}',
  })
  return res.headers.get('set-cookie')!.split(';')[0]!
}

describe('Flumen Rooms process', () => {
  it('drains on SIGTERM: WebSockets close with 1001, SSE streams end, exit 0', async () => {
    const { child, base } = await start()
    const cookie = await signIn(base)
    const socket = new WebSocket(`${base.replace('http', 'ws')}/ws`, 'flumen.v1', { headers: { cookie } })
    await once(socket, 'open')
    const streamEnded = new Promise<void>((resolve, reject) => {
      request(`${base}/sse?topic=dashboard`, { headers: { cookie, accept: 'text/event-stream' } }, (res) => {
        expect(res.statusCode).toBe(200)
        res.resume()
        res.once('end', resolve)
        res.once('close', resolve)
      })
        .once('error', reject)
        .end()
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const closed = once(socket, 'close') as Promise<[number, Buffer]>
    child.kill('SIGTERM')
    const [code] = await closed
    expect(code).toBe(1001)
    await streamEnded
    const [exitCode] = (await once(child, 'exit')) as [number]
    expect(exitCode).toBe(0)
  })

  it('uses Redis with REDIS_URL', async () => {
    const { base, banner } = await start({ REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' })
    expect(banner).toContain('Redis engine')
    const cookie = await signIn(base)
    const room = `redis-check-${Date.now()}`
    const posted = await fetch(`${base}/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: '{"text":"through redis"}',
    })
    expect(posted.status).toBe(200)
    const history = (await (
      await fetch(`${base}/api/rooms/${room}/messages`, { headers: { cookie } })
    ).json()) as {
      messages: { data: { text: string } }[]
    }
    expect(history.messages.at(-1)?.data.text).toBe('through redis')
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toMatch(/flumen_hub_published_messages_total [1-9]/)
  })
})
