import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const packageDir = fileURLToPath(new URL('..', import.meta.url))
const repo = join(packageDir, '..', '..')
const cli = join(packageDir, 'src', 'cli.ts')
// What the demo depends on is what the scaffolded app installs.
const flumenPackages = Object.keys(
  (JSON.parse(readFileSync(join(repo, 'apps', 'demo', 'package.json'), 'utf8')) as { dependencies: object })
    .dependencies,
)
  .filter((name) => name.startsWith('@flumen/'))
  .map((name) => name.slice('@flumen/'.length))

const temps: string[] = []
let app: ChildProcess | undefined
afterAll(async () => {
  if (app && app.exitCode === null) {
    app.kill('SIGKILL')
    await once(app, 'exit')
  }
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })))
})

const temp = async (prefix: string): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}

const scaffold = (target: string): Promise<{ stdout: string; stderr: string }> =>
  run(process.execPath, ['--import', 'tsx', cli, target], { cwd: repo })

describe('create-flumen', () => {
  it('copies the demo as a standalone app with published version ranges, and refuses a non-empty directory', async () => {
    const target = join(await temp('create-flumen-'), 'my-app')
    const { stdout } = await scaffold(target)
    expect(stdout).toContain('npm install')
    expect(stdout).toContain('npm start')
    const files = await readdir(target)
    expect(files.sort()).toEqual(
      expect.arrayContaining(['.gitignore', 'README.md', 'package.json', 'public', 'src', 'tsconfig.json']),
    )
    expect(files).not.toContain('e2e')
    expect(await readdir(join(target, 'src'))).not.toContain('api.test.ts')
    const pkg = JSON.parse(await readFile(join(target, 'package.json'), 'utf8')) as {
      name: string
      dependencies: Record<string, string>
      scripts: Record<string, string>
    }
    expect(pkg.name).toBe('my-app')
    expect(pkg.scripts.start).toBe('tsx src/main.ts')
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      expect(range).not.toBe('*')
      if (name.startsWith('@flumen/')) expect(range).toMatch(/^\^\d+\.\d+\.\d+/)
    }
    const tsconfig = await readFile(join(target, 'tsconfig.json'), 'utf8')
    expect(tsconfig).not.toContain('../../')
    await expect(scaffold(target)).rejects.toMatchObject({ stderr: expect.stringMatching(/not empty/) })
    await expect(run(process.execPath, ['--import', 'tsx', cli], { cwd: repo })).rejects.toMatchObject({
      stderr: expect.stringMatching(/Usage/),
    })
  })

  it('installs with the packed local packages, starts, answers /healthz and serves its page', async () => {
    // Packs need dist/: build (turbo's cache makes this quick when nothing changed).
    await run('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
      cwd: repo,
      maxBuffer: 1 << 24,
    })
    const tarballs = await temp('flumen-packs-')
    for (const name of flumenPackages)
      await run('npm', ['pack', '--silent', '--pack-destination', tarballs], {
        cwd: join(repo, 'packages', name),
      })
    const packed = (await readdir(tarballs)).map((file) => join(tarballs, file))
    expect(packed).toHaveLength(flumenPackages.length)

    const target = join(await temp('create-flumen-'), 'rooms')
    await scaffold(target)
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packed], {
      cwd: target,
      maxBuffer: 1 << 24,
    })
    const installed = JSON.parse(
      await readFile(join(target, 'node_modules', '@flumen', 'core', 'package.json'), 'utf8'),
    )
    expect(installed.name).toBe('@flumen/core')

    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: target,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: join(target, 'data'),
        TSX_TSCONFIG_PATH: '',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    app = child
    let output = ''
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${output}`)), 60_000)
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        const match = /Flumen Rooms on (http:\/\/\S+)/.exec(output)
        if (match) {
          clearTimeout(timer)
          resolve(match[1]!)
        }
      })
      child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)))
    })
    const health = await fetch(new URL('/healthz', url))
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    const script = await fetch(new URL('/app.js', url))
    expect(script.status).toBe(200)
    expect(await script.text()).toContain('flumen.v1')
    child.removeAllListeners('exit')
    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number]
    expect(code).toBe(0)
  })
})
