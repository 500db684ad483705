// better-sqlite3's install script fetches a prebuilt binary from its GitHub releases and compiles
// one when that fails (two minutes on two cores, each time). This machine has no internet, so the
// rehearsal serves what GitHub would: the binary the workspace's own install built, at the URL
// prebuild-install asks its mirror for (npm_config_better_sqlite3_binary_host).
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface PrebuiltBinaries {
  /** Environment for npm: where better-sqlite3's install looks for its binary. */
  readonly env: Record<string, string>
  stop(): Promise<void>
}

/** Packs `<packageDir>/build/Release/better_sqlite3.node` as a prebuild and serves it on 127.0.0.1. */
export const servePrebuiltBetterSqlite3 = async (
  packageDir: string,
  tarball: string,
): Promise<PrebuiltBinaries> => {
  const { version } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as {
    version: string
  }
  await run('tar', ['-czf', tarball, '-C', packageDir, 'build/Release/better_sqlite3.node'])
  const body = await readFile(tarball)
  // prebuild-install's name: {name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}.tar.gz
  const path = `/v${version}/better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`
  const server = createServer((req, res) => {
    if (req.url !== path) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    env: { npm_config_better_sqlite3_binary_host: `http://127.0.0.1:${port}` },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
