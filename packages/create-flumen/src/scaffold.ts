import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve, sep } from 'node:path'

export interface ScaffoldOptions {
  /** Where the new app goes; must not exist or be empty. */
  targetDir: string
  /** The demo app to copy (the package's `template/`, or apps/demo in the monorepo). */
  templateDir: string
  /** Versions of the @flumen packages, for `^x.y.z` ranges in place of workspace ones. */
  versions: Record<string, string>
}

/** What is copied from the demo, and what stays behind (tests need the monorepo; data is yours). */
const skipped = (path: string): boolean => {
  const parts = path.split(sep)
  return (
    parts.some((part) => ['node_modules', 'data', 'dist', 'e2e', '.turbo'].includes(part)) ||
    /\.test\.ts$/.test(path) ||
    ['vitest.config.ts', 'tsconfig.json', 'versions.json'].includes(path)
  )
}

const appName = (dir: string): string => {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '')
  return name || 'flumen-app'
}

const standaloneTsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023', 'DOM', 'DOM.Iterable'],
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  },
  include: ['src', 'public'],
}

/** Copies the demo into `targetDir` as a standalone app. Returns the files written. */
export const scaffold = async (options: ScaffoldOptions): Promise<string[]> => {
  const target = resolve(options.targetDir)
  const existing = await readdir(target).catch(() => undefined)
  if (existing && existing.length > 0) throw new Error(`${target} exists and is not empty`)
  await mkdir(target, { recursive: true })
  const written: string[] = []
  await cp(options.templateDir, target, {
    recursive: true,
    filter: (source) => {
      const path = relative(options.templateDir, source)
      if (path === '' || !skipped(path)) {
        if (path) written.push(path)
        return true
      }
      return false
    },
  })

  const pkgPath = join(target, 'package.json')
  const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as Record<string, unknown>
  const rewrite = (deps: unknown): Record<string, string> => {
    const out: Record<string, string> = {}
    for (const [name, range] of Object.entries((deps ?? {}) as Record<string, string>)) {
      if (name.startsWith('@flumen/')) {
        const version = options.versions[name]
        if (!version) throw new Error(`no published version known for ${name}`)
        out[name] = `^${version}`
      } else out[name] = range
    }
    return out
  }
  const app = {
    name: appName(target),
    version: '0.1.0',
    private: true,
    type: 'module',
    description: 'A real-time app on Flumen, started from Flumen Rooms',
    scripts: { start: 'tsx src/main.ts', typecheck: 'tsc -p tsconfig.json' },
    engines: { node: '>=20.19' },
    dependencies: rewrite(pkg.dependencies),
    devDependencies: { '@types/node': '^20.19.0', typescript: '~5.9.3' },
  }
  await writeFile(pkgPath, `${JSON.stringify(app, null, 2)}\n`)
  await writeFile(join(target, 'tsconfig.json'), `${JSON.stringify(standaloneTsconfig, null, 2)}\n`)
  await writeFile(join(target, '.gitignore'), 'node_modules/\ndata/\n')
  written.push('tsconfig.json', '.gitignore')
  return written.sort()
}

/** True when `path` is a directory. */
export const isDirectory = async (path: string): Promise<boolean> =>
  (await stat(path).catch(() => undefined))?.isDirectory() ?? false
