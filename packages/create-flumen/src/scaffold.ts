import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve, sep } from 'node:path'

/** A template's manifest (`templates/<name>/template.json`). */
export interface TemplateManifest {
  description: string
  /** Copy Flumen Rooms (the monorepo's apps/demo) first, then this template's files over it. */
  base?: 'demo'
  /** Of the base's dependencies, those the app only needs to develop and build. */
  devOnly?: readonly string[]
  /** `*` for an @flumen package: the version being published. */
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  scripts: Record<string, string>
  /** npm's `allowScripts` for the app: the dependencies whose install scripts it trusts. */
  allowScripts?: Record<string, boolean>
}

export interface ScaffoldOptions {
  /** Where the new app goes; must not exist or be empty. */
  targetDir: string
  /** The template's directory (its files and `template.json`). */
  templateDir: string
  /** Flumen Rooms, for templates built on it. */
  demoDir: string
  /** Versions of the @flumen packages, for `^x.y.z` ranges. */
  versions: Record<string, string>
}

export const templateNames: readonly string[] = ['rooms', 'minimal']

/** Of the demo, what a new app does not get: the monorepo's own tests and configs, data, builds. */
const skippedFromDemo = (path: string): boolean => {
  const parts = path.split(sep)
  return (
    parts.some((part) => ['node_modules', 'data', 'dist', 'e2e', '.turbo'].includes(part)) ||
    ['api.test.ts', 'process.test.ts'].includes(parts.at(-1)!) ||
    [
      'vitest.config.ts',
      'tsconfig.json',
      'tsconfig.build.json',
      `public${sep}tsconfig.json`,
      'package.json',
      'README.md',
      'CHANGELOG.md',
    ].includes(path)
  )
}

// npm never packs files named .gitignore (nor lets .npmignore-like names through as they are):
// templates carry them without the dot.
const dotFiles: Record<string, string> = { gitignore: '.gitignore', dockerignore: '.dockerignore' }

const appName = (dir: string): string => {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '')
  return name || 'flumen-app'
}

const copyTree = async (from: string, to: string, skip: (path: string) => boolean): Promise<string[]> => {
  const written: string[] = []
  await cp(from, to, {
    recursive: true,
    filter: (source) => {
      const path = relative(from, source)
      if (path !== '' && skip(path)) return false
      if (path) written.push(path)
      return true
    },
  })
  return written
}

/** Copies a template into `targetDir` as a standalone app. Returns the files written. */
export const scaffold = async (options: ScaffoldOptions): Promise<string[]> => {
  const target = resolve(options.targetDir)
  const existing = await readdir(target).catch(() => undefined)
  if (existing && existing.length > 0) throw new Error(`${target} exists and is not empty`)
  const manifest = JSON.parse(
    await readFile(join(options.templateDir, 'template.json'), 'utf8'),
  ) as TemplateManifest
  await mkdir(target, { recursive: true })
  const written = new Set<string>()
  let baseDependencies: Record<string, string> = {}
  if (manifest.base === 'demo') {
    for (const path of await copyTree(options.demoDir, target, skippedFromDemo)) written.add(path)
    const demo = JSON.parse(await readFile(join(options.demoDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>
    }
    baseDependencies = demo.dependencies ?? {}
  }
  for (const path of await copyTree(options.templateDir, target, (path) => path === 'template.json'))
    written.add(path)
  for (const [name, dotted] of Object.entries(dotFiles)) {
    if (!written.has(name)) continue
    await rename(join(target, name), join(target, dotted))
    written.delete(name)
    written.add(dotted)
  }

  const versionOf = (name: string, range: string): string => {
    if (!name.startsWith('@flumen/')) return range
    const version = options.versions[name]
    if (!version) throw new Error(`no published version known for ${name}`)
    return `^${version}`
  }
  const dependencies: Record<string, string> = {}
  const devDependencies: Record<string, string> = {}
  for (const [name, range] of Object.entries({ ...baseDependencies, ...manifest.dependencies })) {
    if (manifest.devOnly?.includes(name)) devDependencies[name] = versionOf(name, range)
    else dependencies[name] = versionOf(name, range)
  }
  for (const [name, range] of Object.entries(manifest.devDependencies ?? {}))
    devDependencies[name] = versionOf(name, range)
  const sorted = (deps: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b)))
  const name = appName(target)
  const app = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: manifest.description,
    scripts: manifest.scripts,
    engines: { node: '>=20.19' },
    dependencies: sorted(dependencies),
    devDependencies: sorted(devDependencies),
    ...(manifest.allowScripts && { allowScripts: manifest.allowScripts }),
  }
  await writeFile(join(target, 'package.json'), `${JSON.stringify(app, null, 2)}\n`)
  written.add('package.json')
  // The app's README names the app.
  const readme = join(target, 'README.md')
  if (written.has('README.md'))
    await writeFile(readme, (await readFile(readme, 'utf8')).replaceAll('{{name}}', name))
  return [...written].sort()
}

/** True when `path` is a directory. */
export const isDirectory = async (path: string): Promise<boolean> =>
  (await stat(path).catch(() => undefined))?.isDirectory() ?? false
