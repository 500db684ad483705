// A real npm registry for release tests: Verdaccio on a free port with a temp storage. Flumen's
// packages (and create-flumen) live only here; everything else is proxied from the npm registry,
// so installs from an empty directory work with this registry alone and never publish anywhere else.

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis.js'

const verdaccio = fileURLToPath(new URL('../../../node_modules/verdaccio/bin/verdaccio', import.meta.url))

export interface Registry {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  /** A publish token of the registry's user. */
  readonly token: string
  /** `.npmrc` lines that point npm at this registry (and only there) with the token. */
  readonly npmrc: string
  stop(): Promise<void>
}

/** Starts Verdaccio and creates its publishing user. */
export const startRegistry = async (): Promise<Registry> => {
  const dir = await mkdtemp(join(tmpdir(), 'flumen-registry-'))
  const port = await freePort()
  const config = join(dir, 'config.yaml')
  await writeFile(
    config,
    [
      `storage: ${join(dir, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(dir, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      '    timeout: 60s',
      'packages:',
      // Ours are never fetched from (nor published to) the public registry.
      "  '@flumen/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  'create-flumen':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    proxy: npmjs',
      'log: { type: stdout, format: pretty, level: error }',
      'publish:',
      '  allow_offline: true',
      '',
    ].join('\n'),
  )
  const child: ChildProcess = spawn(
    process.execPath,
    [verdaccio, '--config', config, '--listen', `127.0.0.1:${port}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stdout!.resume()
  child.stderr!.resume()
  const url = `http://127.0.0.1:${port}/`
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null) throw new Error('verdaccio exited')
      const up = await fetch(`${url}-/ping`).then(
        (res) => res.ok,
        () => false,
      )
      if (up) break
      if (Date.now() > deadline) throw new Error('verdaccio did not start')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    // npm adduser, without its prompt.
    const res = await fetch(`${url}-/user/org.couchdb.user:rehearsal`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'rehearsal',
        password: 'rehearsal-password',
        email: 'release@example.invalid',
      }),
    })
    const { token } = (await res.json()) as { token?: string }
    if (!token) throw new Error(`verdaccio gave no token (${res.status})`)
    const host = url.replace(/^https?:/, '')
    return { url, token, npmrc: `registry=${url}\n${host}:_authToken=${token}\n`, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
