import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export interface DemoConfig {
  /** @default 3000 */
  port: number
  /** @default undefined (all interfaces) */
  host: string | undefined
  /** Redis for many nodes; without it, the SQLite engine on DATA_DIR/flumen.db. */
  redisUrl: string | undefined
  /** Signs session tokens (≥ 32 characters); generated once into DATA_DIR when not given. */
  jwtSecret: string
  /** Uploaded files and the generated secret. @default ./data */
  dataDir: string
  /** @default 52428800 (50 MiB) */
  uploadMaxBytes: number
  /** Other origins allowed to open WebSockets/streams and post with the cookie (comma-separated). */
  allowedOrigins: string[]
  /**
   * The password of the `admin` user of the inspector at /admin/inspector (HTTP Basic auth, at least
   * 16 characters); without it there is no inspector.
   */
  adminPassword: string | undefined
}

const integer = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined || value === '') return fallback
  const parsed = Number(value)
  if (!Number.isSafeInteger(parsed) || parsed < 0)
    throw new Error(`${name} must be a non-negative integer, got "${value}"`)
  return parsed
}

/** Reads the environment (PORT, HOST, REDIS_URL, JWT_SECRET, DATA_DIR, UPLOAD_MAX_BYTES, ALLOWED_ORIGINS, ADMIN_PASSWORD). */
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): DemoConfig => {
  const dataDir = resolve(env.DATA_DIR || './data')
  mkdirSync(dataDir, { recursive: true })
  let jwtSecret = env.JWT_SECRET ?? ''
  if (jwtSecret === '') {
    // Kept in DATA_DIR so sessions survive a restart without configuration.
    const file = join(dataDir, '.jwt-secret')
    try {
      jwtSecret = readFileSync(file, 'utf8').trim()
    } catch {
      jwtSecret = randomBytes(48).toString('base64url')
      writeFileSync(file, jwtSecret, { mode: 0o600 })
    }
  }
  if (jwtSecret.length < 32) throw new Error('JWT_SECRET must be at least 32 characters')
  const adminPassword = env.ADMIN_PASSWORD || undefined
  if (adminPassword !== undefined && adminPassword.length < 16)
    throw new Error('ADMIN_PASSWORD must be at least 16 characters')
  return {
    port: integer('PORT', env.PORT, 3000),
    host: env.HOST || undefined,
    redisUrl: env.REDIS_URL || undefined,
    jwtSecret,
    dataDir,
    uploadMaxBytes: integer('UPLOAD_MAX_BYTES', env.UPLOAD_MAX_BYTES, 50 * 1024 * 1024),
    allowedOrigins: (env.ALLOWED_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    adminPassword,
  }
}
