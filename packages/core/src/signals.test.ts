import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const tsx = createRequire(import.meta.url).resolve('tsx/cli')
const fixture = fileURLToPath(new URL('../test/signal-server.fixture.ts', import.meta.url))
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url))
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL')
})

const startChild = async (): Promise<{ child: ChildProcess; url: string; output: () => string }> => {
  const child = spawn(process.execPath, [tsx, '--tsconfig', tsconfig, fixture], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  const deadline = Date.now() + 15_000
  while (!/http:\/\/\S+/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`fixture did not start: ${output}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return { child, url: output.match(/http:\/\/\S+/)![0], output: () => output }
}

describe('handleSignals', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s finishes in-flight requests, runs stop hooks and exits 0',
    async (signal) => {
      const { child, url, output } = await startChild()
      const slow = fetch(new URL('/slow', url))
      await new Promise((r) => setTimeout(r, 100))
      const exited = once(child, 'exit')
      child.kill(signal)
      const res = await slow
      expect(await res.text()).toBe('finished')
      const [code] = (await exited) as [number | null]
      expect(code).toBe(0)
      expect(output()).toContain('stopped')
    },
  )
})
