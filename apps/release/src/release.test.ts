// The release rehearsal: what a maintainer and a new user do, against a registry of our own.
// A copy of the repository versions and publishes every public package with changesets; then, from
// empty directories with only that registry, `npm create flumen` makes apps that install, test,
// typecheck, build and start, and each package installs alone and runs its README's example.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Registry } from '@flumen/testing'
import { freePort, sharedRedisUrl, startRegistry, waitFor } from '@flumen/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PrebuiltBinaries } from './prebuilt-binaries.js'
import { servePrebuiltBetterSqlite3 } from './prebuilt-binaries.js'
import { readmeExample } from './readme.js'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('../../../', import.meta.url))
const publicPackages = [
  '@flumen/core',
  '@flumen/ws',
  '@flumen/sse',
  '@flumen/broadcast',
  '@flumen/broadcast-redis',
  '@flumen/broadcast-sqlite',
  '@flumen/uploads',
  '@flumen/auth',
  '@flumen/client',
  '@flumen/contract',
  '@flumen/metrics',
  '@flumen/inspector',
  '@flumen/yjs',
  'create-flumen',
]

/** The folder under packages/ of a public package. */
const packageDir = (name: string): string => name.replace(/^@flumen\//, '')

let registry: Registry
let work: string
let userConfig: string
let prebuilt: PrebuiltBinaries | undefined
const children: ChildProcess[] = []

/** The environment of a user's shell: none of the test runner's npm or Vitest variables. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env))
    if (!/^(npm_|VITEST|NODE_OPTIONS$|NODE_ENV$)/i.test(key)) env[key] = value
  return {
    ...env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...prebuilt?.env,
    ...extra,
  }
}
/** A user whose npm knows only our registry. */
const userEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv =>
  cleanEnv({ NPM_CONFIG_USERCONFIG: userConfig, npm_config_registry: registry.url, ...extra })

const sh = async (cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> => {
  try {
    const { stdout } = await run(command, args, { cwd, env, maxBuffer: 1 << 26, timeout: 300_000 })
    return stdout
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string }
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}:\n${stdout?.slice(-3000)}\n${stderr?.slice(-3000)}`,
    )
  }
}

const temp = async (name: string): Promise<string> => mkdtemp(join(work, `${name}-`))

/** Starts `command` (a server); resolves once it answers HTTP on `port`; returns its exit code promise. */
const startServer = async (
  cwd: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> => {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}: ${output}`)
      return fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => true,
        () => false,
      )
    },
    60_000,
    `${command} ${args.join(' ')} did not answer on ${port}: ${output}`,
  )
  return { child, exited, output: () => output }
}

beforeAll(async () => {
  registry = await startRegistry()
  work = await mkdtemp(join(tmpdir(), 'flumen-release-'))
  userConfig = join(work, 'user.npmrc')
  prebuilt = await servePrebuiltBetterSqlite3(
    join(repo, 'node_modules', 'better-sqlite3'),
    join(work, 'better-sqlite3-prebuilt.tar.gz'),
  )
  await writeFile(userConfig, `registry=${registry.url}\n`)
  // The repository as it is (tracked and new files), without its builds and installs.
  const copy = join(work, 'repo')
  const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repo,
    maxBuffer: 1 << 26,
  })
  for (const file of stdout.split('\0').filter(Boolean)) {
    await mkdir(dirname(join(copy, file)), { recursive: true })
    await cp(join(repo, file), join(copy, file)).catch(() => {}) // a file deleted but not committed
  }
  await sh(copy, 'npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], cleanEnv())
}, 600_000)

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  await registry?.stop()
  await prebuilt?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

describe('release rehearsal', () => {
  it('changeset version, then npm run release, publish every public package at 0.1.0', async () => {
    const copy = join(work, 'repo')
    await sh(copy, 'npx', ['changeset', 'version'], cleanEnv())
    for (const dir of publicPackages.map(packageDir)) {
      const pkg = JSON.parse(await readFile(join(copy, 'packages', dir, 'package.json'), 'utf8')) as {
        version: string
        dependencies?: Record<string, string>
      }
      expect(pkg.version, dir).toBe('0.1.0')
      for (const [name, range] of Object.entries(pkg.dependencies ?? {}))
        if (name.startsWith('@flumen/')) expect(range, `${dir} → ${name}`).toBe('^0.1.0')
      expect(await readFile(join(copy, 'packages', dir, 'CHANGELOG.md'), 'utf8')).toContain('## 0.1.0')
    }
    // The token goes into the .npmrc the release publishes from (npm run release does not pass an
    // npm_config_…_authToken variable on to the npm publish that changesets runs).
    await writeFile(join(copy, '.npmrc'), registry.npmrc)
    await sh(copy, 'npm', ['run', 'release'], cleanEnv())
    for (const name of publicPackages) {
      const packument = (await (await fetch(`${registry.url}${name.replace('/', '%2f')}`)).json()) as {
        'dist-tags': { latest: string }
        versions: Record<string, { dist: { tarball: string } }>
      }
      expect(packument['dist-tags'].latest, name).toBe('0.1.0')
      // What ships: no source map pointing at files that do not, no tests.
      const tarball = join(work, `${name.replace(/\W/g, '-')}.tgz`)
      await writeFile(
        tarball,
        Buffer.from(await (await fetch(packument.versions['0.1.0']!.dist.tarball)).arrayBuffer()),
      )
      const files = (await sh(work, 'tar', ['-tzf', tarball], cleanEnv())).split('\n').filter(Boolean)
      expect(
        files.filter((file) => file.endsWith('.map')),
        name,
      ).toEqual([])
      expect(
        // Tests, type tests and fixtures (a scaffolded app's own tests under templates/ ship on purpose).
        files.filter(
          (file) => /\.(test|test-d|fixture)\.(d\.ts|ts|js)$/.test(file) && !file.includes('/templates/'),
        ),
        name,
      ).toEqual([])
      expect(files, name).toEqual(
        expect.arrayContaining(['package/package.json', 'package/README.md', 'package/LICENSE']),
      )
    }
  })

  for (const template of ['rooms', 'minimal']) {
    it(`npm create flumen@latest (${template}) from an empty directory: install, test, typecheck, build, start`, async () => {
      const empty = await temp(`create-${template}`)
      await sh(empty, 'npm', ['create', 'flumen@latest', 'my-app', '--', '--template', template], userEnv())
      const app = join(empty, 'my-app')
      await sh(app, 'npm', ['install'], userEnv())
      await sh(app, 'npm', ['test'], userEnv())
      await sh(app, 'npm', ['run', 'typecheck'], userEnv())
      await sh(app, 'npm', ['run', 'build'], userEnv())
      const port = await freePort()
      const server = await startServer(
        app,
        'npm',
        ['start'],
        userEnv({ PORT: String(port), HOST: '127.0.0.1' }),
        port,
      )
      expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toEqual({ status: 'ok' })
      if (template === 'rooms') {
        expect((await fetch(`http://127.0.0.1:${port}/`)).headers.get('content-type')).toMatch(/^text\/html/)
        const script = await fetch(`http://127.0.0.1:${port}/app.js`)
        expect(script.status).toBe(200)
        expect((await script.text()).length).toBeGreaterThan(1000)
      }
      // One process under npm: SIGTERM reaches the server, which drains and exits 0.
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow()
    })
  }

  it('each package installs alone with its peers, and its README example typechecks (skipLibCheck off) and runs', async () => {
    const examples = new Map<string, string>()
    const prepare = async (dir: string): Promise<string> => {
      const readme = await readFile(join(repo, 'packages', dir, 'README.md'), 'utf8')
      const { install, code } = readmeExample(readme)
      const project = await temp(`alone-${dir}`)
      await writeFile(
        join(project, 'package.json'),
        JSON.stringify({ name: `try-${dir}`, private: true, type: 'module' }),
      )
      await writeFile(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['ES2023'],
            types: ['node'],
            strict: true,
            noEmit: true,
            skipLibCheck: false,
          },
          include: ['example.ts'],
        }),
      )
      await writeFile(join(project, 'example.ts'), code)
      await sh(
        project,
        'npm',
        ['install', ...install, 'tsx', 'typescript@~5.9.3', '@types/node@^20.19.0'],
        userEnv(),
      )
      const installed = await readdir(join(project, 'node_modules', '@flumen'))
      expect(installed.length, dir).toBeGreaterThan(0)
      await sh(project, 'npx', ['tsc', '-p', 'tsconfig.json'], userEnv())
      examples.set(dir, project)
      return project
    }
    const secrets = { JWT_SECRET: 'j'.repeat(40), COOKIE_SECRET: 'c'.repeat(40), REDIS_URL: sharedRedisUrl }
    const servers = [
      'core',
      'ws',
      'sse',
      'broadcast',
      'broadcast-redis',
      'broadcast-sqlite',
      'auth',
      'uploads',
      'metrics',
      'inspector',
      'yjs',
    ]
    for (const dir of servers) await prepare(dir)
    await prepare('client')
    // The contract's example is a script: it defines a contract and checks a message.
    const contractOutput = await sh(await prepare('contract'), 'npx', ['tsx', 'example.ts'], userEnv())
    expect(contractOutput).toContain('room:{id}')
    let hubPort = 0
    for (const dir of servers) {
      const port = await freePort()
      // tsx itself, not through npx: npx does not pass SIGTERM on, and the example (tsx and its node)
      // went on serving after the test.
      const server = await startServer(
        examples.get(dir)!,
        join(examples.get(dir)!, 'node_modules', '.bin', 'tsx'),
        ['example.ts'],
        userEnv({ PORT: String(port), ...secrets }),
        port,
      )
      if (dir === 'broadcast') {
        hubPort = port
        // The client's example talks to this hub.
        await sh(
          examples.get('client')!,
          'npx',
          ['tsx', 'example.ts'],
          userEnv({ HUB_URL: `ws://127.0.0.1:${hubPort}/ws` }),
        )
      }
      server.child.kill('SIGTERM')
      await server.exited
      await expect(fetch(`http://127.0.0.1:${port}/healthz`), dir).rejects.toThrow()
    }
    expect(hubPort).toBeGreaterThan(0)
  })
})
