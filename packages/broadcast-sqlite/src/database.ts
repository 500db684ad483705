// The database file: opened in WAL mode, recognised as Flumen's by its application id and schema
// version, checked for damage, and given its tables. A file that is not SQLite, another program's
// database or a newer schema is refused at startup with a clear error, never written over.
import Database from 'better-sqlite3'

/** `PRAGMA application_id` of a Flumen history database ('Flum'). */
export const applicationId = 0x466c756d
/** `PRAGMA user_version`: the schema below. */
export const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS topics (
  name TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  last_offset INTEGER NOT NULL,
  count INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  topic TEXT NOT NULL,
  offset INTEGER NOT NULL,
  data TEXT NOT NULL,
  origin TEXT,
  stored_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (topic, offset)
);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages (stored_at);
CREATE TABLE IF NOT EXISTS publish_keys (
  topic TEXT NOT NULL,
  key TEXT NOT NULL,
  epoch TEXT NOT NULL,
  offset INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (topic, key)
);
CREATE INDEX IF NOT EXISTS publish_keys_by_age ON publish_keys (at);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  saved_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS generations (
  bucket INTEGER PRIMARY KEY,
  generation INTEGER NOT NULL
);
`

/** Why the engine cannot use a file: its `.code` says which case it is. */
export class SqliteEngineError extends Error {
  override readonly name = 'SqliteEngineError'
  constructor(
    readonly code: 'NOT_A_DATABASE' | 'FOREIGN_DATABASE' | 'NEWER_SCHEMA' | 'CORRUPT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export type SqliteDatabase = Database.Database

export const openDatabase = (
  file: string,
  options: { synchronous: 'normal' | 'full'; checkOnOpen: boolean },
): SqliteDatabase => {
  let db: SqliteDatabase
  try {
    db = new Database(file)
  } catch (err) {
    throw new SqliteEngineError('NOT_A_DATABASE', `sqliteEngine: cannot open ${file}: ${String(err)}`, {
      cause: err,
    })
  }
  try {
    // The first read of the header: a file that is not SQLite fails here (SQLITE_NOTADB).
    let appId: number
    let version: number
    try {
      appId = db.pragma('application_id', { simple: true }) as number
      version = db.pragma('user_version', { simple: true }) as number
    } catch (err) {
      throw new SqliteEngineError('NOT_A_DATABASE', `sqliteEngine: ${file} is not a SQLite database`, {
        cause: err,
      })
    }
    const empty = (db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number }).n === 0
    if (appId !== applicationId && !(appId === 0 && empty))
      throw new SqliteEngineError(
        'FOREIGN_DATABASE',
        `sqliteEngine: ${file} is another program's database (application_id ${appId}); give Flumen a file of its own`,
      )
    if (version > schemaVersion)
      throw new SqliteEngineError(
        'NEWER_SCHEMA',
        `sqliteEngine: ${file} has schema ${version}, newer than this version's ${schemaVersion}: upgrade @flumen/broadcast-sqlite`,
      )
    if (options.checkOnOpen && !empty) {
      const result = db.pragma('quick_check', { simple: true })
      if (result !== 'ok')
        throw new SqliteEngineError(
          'CORRUPT',
          `sqliteEngine: ${file} is damaged (quick_check: ${String(result)})`,
        )
    }
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('foreign_keys = OFF')
    db.exec(schema)
    db.pragma(`application_id = ${applicationId}`)
    db.pragma(`user_version = ${schemaVersion}`)
    return db
  } catch (err) {
    db.close()
    if (err instanceof SqliteEngineError) throw err
    // SQLITE_CORRUPT and friends while reading the schema or creating tables.
    throw new SqliteEngineError('CORRUPT', `sqliteEngine: ${file} is damaged: ${String(err)}`, { cause: err })
  }
}
