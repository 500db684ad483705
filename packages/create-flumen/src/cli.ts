#!/usr/bin/env node
// npm create flumen@latest <dir> [-- --template rooms|minimal] [--install]: a new app from a template.
import { spawnSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDirectory, scaffold, templateNames } from './scaffold.js'

const usage = `Usage: npm create flumen@latest <directory> [-- --template <name>] [--install]

  --template, -t   ${templateNames.join(' | ')} (default rooms): Flumen Rooms, the collaborative app
                   with chat, presence, uploads and a dashboard; or one Hono app with a WebSocket
                   hub, an SSE route and an upload route in one short file
  --install        run npm install in the new app
  --help, -h       this text

Never asks anything: it runs the same in a terminal and in CI.`

interface Arguments {
  dir: string | undefined
  template: string
  install: boolean
  help: boolean
}

const parse = (args: readonly string[]): Arguments => {
  const parsed: Arguments = { dir: undefined, template: 'rooms', install: false, help: false }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--help' || arg === '-h') parsed.help = true
    else if (arg === '--install') parsed.install = true
    else if (arg === '--template' || arg === '-t') parsed.template = args[++i] ?? ''
    else if (arg.startsWith('--template=')) parsed.template = arg.slice('--template='.length)
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`)
    else if (parsed.dir === undefined) parsed.dir = arg
    else throw new Error(`one directory only (got ${parsed.dir} and ${arg})`)
  }
  if (!templateNames.includes(parsed.template))
    throw new Error(`no template "${parsed.template}": choose ${templateNames.join(' or ')}`)
  return parsed
}

/**
 * Where templates are: shipped in the package (with Flumen Rooms copied in at pack time and the
 * versions being published), or in the monorepo, where the demo is apps/demo.
 */
const locate = async (): Promise<{
  templates: string
  demoDir: string
  versions: Record<string, string>
}> => {
  const packageDir = fileURLToPath(new URL('..', import.meta.url))
  const templates = join(packageDir, 'templates')
  if (await isDirectory(join(templates, 'rooms-base'))) {
    const versions = JSON.parse(await readFile(join(templates, 'versions.json'), 'utf8')) as Record<
      string,
      string
    >
    return { templates, demoDir: join(templates, 'rooms-base'), versions }
  }
  const repo = join(packageDir, '..', '..')
  // Every published @flumen package of this checkout, at its version.
  const versions: Record<string, string> = {}
  for (const dir of await readdir(join(repo, 'packages'))) {
    const pkg = JSON.parse(await readFile(join(repo, 'packages', dir, 'package.json'), 'utf8')) as {
      name: string
      version: string
      private?: boolean
    }
    if (pkg.name.startsWith('@flumen/') && !pkg.private) versions[pkg.name] = pkg.version
  }
  return { templates, demoDir: join(repo, 'apps', 'demo'), versions }
}

const main = async (): Promise<number> => {
  let args: Arguments
  try {
    args = parse(process.argv.slice(2))
  } catch (err) {
    console.error(`create-flumen: ${(err as Error).message}\n\n${usage}`)
    return 1
  }
  if (args.help) {
    console.log(usage)
    return 0
  }
  if (!args.dir) {
    console.error(usage)
    return 1
  }
  try {
    const { templates, demoDir, versions } = await locate()
    await scaffold({ targetDir: args.dir, templateDir: join(templates, args.template), demoDir, versions })
  } catch (err) {
    console.error(`create-flumen: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  }
  const shown = relative(process.cwd(), args.dir) || '.'
  if (args.install) {
    const result = spawnSync('npm', ['install'], { cwd: args.dir, stdio: 'inherit' })
    if (result.status !== 0) return result.status ?? 1
  }
  console.log(
    `\nA new Flumen app (${args.template}) is in ${shown}. Next:\n\n  cd ${shown}\n${args.install ? '' : '  npm install\n'}  npm run dev          # http://localhost:3000\n\nnpm test, npm run typecheck, npm run build, npm start: see README.md.\n`,
  )
  return 0
}

process.exitCode = await main()
