// Starts the demo as its own process (as `npm start` does) for the tests that kill or signal it.
import { type ChildProcess, fork } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const demoDir = fileURLToPath(new URL('../', import.meta.url))

export interface DemoProcess {
  child: ChildProcess
  /** `http://127.0.0.1:<port>` */
  base: string
  /** What it printed when it started. */
  banner: string
}

/** Forks src/main.ts with `env` (PORT 0 unless given) and resolves once it listens. */
export const forkDemo = (env: Record<string, string>): Promise<DemoProcess> => {
  const child = fork(join(demoDir, 'src', 'main.ts'), [], {
    cwd: demoDir,
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      TSX_TSCONFIG_PATH: join(demoDir, 'tsconfig.json'),
      PORT: '0',
      HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  })
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the demo did not start: ${output}`))
    }, 30_000)
    const onExit = (code: number | null): void => {
      clearTimeout(timer)
      reject(new Error(`the demo exited with ${code}: ${output}`))
    }
    child.once('exit', onExit)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Flumen Rooms on (http:\/\/\S+?)\/? \(/.exec(output)
      if (!match) return
      clearTimeout(timer)
      child.off('exit', onExit)
      resolve({ child, base: match[1]!, banner: output })
    })
  })
}
