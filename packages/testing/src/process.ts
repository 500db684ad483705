import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const tsconfig = fileURLToPath(new URL('../../../tsconfig.spec.json', import.meta.url))

/** A server running a TypeScript fixture in a process of its own. */
export interface ForkedServer {
  /** The port the fixture reported (`process.send({ port })` once it listens). */
  readonly port: number
  readonly child: ChildProcess
  /** SIGKILL (default) or another signal; resolves once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>
}

/**
 * Forks `file` (run with tsx and the repository's test tsconfig, so `@flumen/*` are the sources)
 * with `env`, and resolves once it reported its port over IPC.
 */
export const forkServer = async (
  file: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ForkedServer> => {
  const child = fork(file, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    await once(child, 'exit')
  }
  let timer: NodeJS.Timeout | undefined
  try {
    const [message] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => {
        throw new Error(`${file} exited before it was ready`)
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${file} was not ready in ${timeoutMs} ms`)), timeoutMs)
      }),
    ])) as [{ port: number }]
    return { port: message.port, child, kill }
  } catch (err) {
    await kill()
    throw err
  } finally {
    clearTimeout(timer)
  }
}
