// prepack: ship Flumen Rooms (apps/demo) as templates/rooms-base, and the versions of the @flumen
// packages being published as templates/versions.json. postpack removes both.
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const repo = join(here, '..', '..')
const base = join(here, 'templates', 'rooms-base')
await rm(base, { recursive: true, force: true })
await cp(join(repo, 'apps', 'demo'), base, {
  recursive: true,
  filter: (source) => !/[\\/](node_modules|data|e2e|dist|\.turbo)([\\/]|$)/.test(source),
})
// Every published @flumen package, at the version being published.
const versions = {}
for (const dir of await readdir(join(repo, 'packages'))) {
  const pkg = JSON.parse(await readFile(join(repo, 'packages', dir, 'package.json'), 'utf8'))
  if (pkg.name.startsWith('@flumen/') && !pkg.private) versions[pkg.name] = pkg.version
}
await writeFile(join(here, 'templates', 'versions.json'), `${JSON.stringify(versions, null, 2)}\n`)
