#!/usr/bin/env node
// npm create flumen@latest <dir>: copies Flumen Rooms as a standalone app.
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDirectory, scaffold } from './scaffold.js'

const usage = 'Usage: npm create flumen@latest <directory>'

/** The template shipped in the package, or the demo itself when run inside the monorepo. */
const findTemplate = async (): Promise<{ templateDir: string; versions: Record<string, string> }> => {
  const packageDir = fileURLToPath(new URL('..', import.meta.url))
  const shipped = join(packageDir, 'template')
  if (await isDirectory(shipped)) {
    const versions = JSON.parse(await readFile(join(shipped, 'versions.json'), 'utf8')) as Record<
      string,
      string
    >
    return { templateDir: shipped, versions }
  }
  const repo = join(packageDir, '..', '..')
  // The @flumen packages the demo depends on, at the versions in this checkout.
  const demo = JSON.parse(await readFile(join(repo, 'apps', 'demo', 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>
  }
  const versions: Record<string, string> = {}
  for (const name of Object.keys(demo.dependencies).filter((dep) => dep.startsWith('@flumen/'))) {
    const pkg = JSON.parse(await readFile(join(repo, 'packages', name.slice(8), 'package.json'), 'utf8')) as {
      version: string
    }
    versions[name] = pkg.version
  }
  return { templateDir: join(repo, 'apps', 'demo'), versions }
}

const main = async (): Promise<number> => {
  const args = process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage)
    return 0
  }
  const dir = args.find((arg) => !arg.startsWith('-'))
  if (!dir) {
    console.error(usage)
    return 1
  }
  try {
    const { templateDir, versions } = await findTemplate()
    await scaffold({ targetDir: dir, templateDir, versions })
  } catch (err) {
    console.error(`create-flumen: ${err instanceof Error ? err.message : String(err)}`)
    return 1
  }
  const shown = relative(process.cwd(), dir) || '.'
  console.log(
    `\nFlumen Rooms is in ${shown}. Next:\n\n  cd ${shown}\n  npm install\n  npm start            # http://localhost:3000\n\nSet REDIS_URL to share rooms between processes, JWT_SECRET to fix the signing key,\nDATA_DIR and UPLOAD_MAX_BYTES for uploads. See README.md.\n`,
  )
  return 0
}

process.exitCode = await main()
