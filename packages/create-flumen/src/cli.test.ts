// The scaffolder from the monorepo. Installing, testing, building and starting the apps it creates
// from a real registry is the release rehearsal's (apps/release).
import { execFile } from 'node:child_process'
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

const temps: string[] = []
afterAll(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })))
})

const target = async (name: string): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), 'create-flumen-'))
  temps.push(dir)
  return join(dir, name)
}

const create = (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
  run(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: repo })

interface AppPackage {
  name: string
  scripts: Record<string, string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  allowScripts?: Record<string, boolean>
}

const packageOf = async (dir: string): Promise<AppPackage> =>
  JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as AppPackage

describe('create-flumen', () => {
  it('creates Flumen Rooms as a project of its own: scripts, tests, Dockerfile, its own README', async () => {
    const dir = await target('my-app')
    const { stdout } = await create(dir)
    expect(stdout).toContain('npm run dev')
    const files = await readdir(dir)
    expect(files.sort()).toEqual(
      expect.arrayContaining([
        '.dockerignore',
        '.gitignore',
        'Dockerfile',
        'README.md',
        'package.json',
        'public',
      ]),
    )
    expect(files).not.toContain('e2e')
    expect(files).not.toContain('vitest.config.ts')
    expect((await readdir(join(dir, 'src'))).sort()).toEqual(
      expect.arrayContaining(['app.test.ts', 'app.ts', 'main.ts']),
    )
    expect(await readdir(join(dir, 'src'))).not.toContain('api.test.ts')
    const pkg = await packageOf(dir)
    expect(pkg.name).toBe('my-app')
    expect(pkg.scripts).toMatchObject({
      start: 'exec node dist/main.js',
      test: 'vitest run',
      dev: expect.any(String),
    })
    expect(pkg.devDependencies).toMatchObject({ esbuild: expect.any(String), tsx: expect.any(String) })
    for (const [name, range] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(range, name).not.toBe('*')
      if (name.startsWith('@flumen/')) expect(range).toMatch(/^\^\d+\.\d+\.\d+/)
    }
    expect(pkg.dependencies).not.toHaveProperty('@flumen/testing')
    // Room history in DATA_DIR/flumen.db: the SQLite engine, whose native build npm is told to trust.
    expect(pkg.dependencies).toHaveProperty('@flumen/broadcast-sqlite')
    expect(pkg.allowScripts).toEqual({ 'better-sqlite3': true, esbuild: true })
    for (const config of ['tsconfig.json', 'tsconfig.build.json', 'public/tsconfig.json'])
      expect(await readFile(join(dir, config), 'utf8')).not.toContain('../../')
    const readme = await readFile(join(dir, 'README.md'), 'utf8')
    expect(readme).toMatch(/^# my-app\n/)
    expect(readme).not.toContain('npm create flumen')
    expect(await readFile(join(dir, 'Dockerfile'), 'utf8')).toContain('CMD ["node", "dist/main.js"]')
  })

  it('creates the minimal app: one Hono app with a hub, SSE and uploads', async () => {
    const dir = await target('mini')
    await create(dir, '--template', 'minimal')
    expect((await readdir(join(dir, 'src'))).sort()).toEqual(['app.test.ts', 'app.ts', 'main.ts'])
    const app = await readFile(join(dir, 'src', 'app.ts'), 'utf8')
    for (const route of ['hub.websocket()', 'hub.sse()', 'uploads(']) expect(app).toContain(route)
    const pkg = await packageOf(dir)
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      '@flumen/broadcast',
      '@flumen/core',
      '@flumen/uploads',
      'hono',
    ])
    expect(pkg.scripts.start).toBe('exec node dist/main.js')
  })

  it('refuses a non-empty directory, an unknown template or option, and no directory', async () => {
    const dir = await target('taken')
    await create(dir, '-t', 'minimal')
    await expect(create(dir)).rejects.toMatchObject({ stderr: expect.stringMatching(/not empty/) })
    await expect(create(await target('x'), '--template', 'nope')).rejects.toMatchObject({
      stderr: expect.stringMatching(/no template "nope"/),
    })
    await expect(create(await target('y'), '--yolo')).rejects.toMatchObject({
      stderr: expect.stringMatching(/unknown option --yolo/),
    })
    await expect(create()).rejects.toMatchObject({ stderr: expect.stringMatching(/Usage/) })
    expect((await create('--help')).stdout).toMatch(/--template/)
  })
})
