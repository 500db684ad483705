// prepack: ship apps/demo as template/ with the versions of the @flumen packages it depends on.
import { cp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const repo = join(here, '..', '..')
const template = join(here, 'template')
await rm(template, { recursive: true, force: true })
await cp(join(repo, 'apps', 'demo'), template, {
  recursive: true,
  filter: (source) => !/[\\/](node_modules|data|e2e|dist)([\\/]|$)/.test(source),
})
// The @flumen packages the demo depends on, at the versions being published.
const demo = JSON.parse(await readFile(join(repo, 'apps', 'demo', 'package.json'), 'utf8'))
const versions = {}
for (const name of Object.keys(demo.dependencies).filter((dep) => dep.startsWith('@flumen/'))) {
  versions[name] = JSON.parse(
    await readFile(join(repo, 'packages', name.slice(8), 'package.json'), 'utf8'),
  ).version
}
await writeFile(join(template, 'versions.json'), `${JSON.stringify(versions, null, 2)}\n`)
