// Type tests (`vitest --typecheck`): the callbacks of uploads(), tus() and download() see the
// route's Env, so `c.var.user` is typed behind auth().
import type { AuthEnv, AuthUser } from '@flumen/auth'
import { Hono } from 'hono'
import { describe, expectTypeOf, it } from 'vitest'
import type { StoredFile } from './index.js'
import { diskStorage, download, tus, uploads } from './index.js'

const storage = diskStorage({ dir: '/tmp/flumen-type-test' })

describe('upload callbacks', () => {
  it('see the user of the route Env in uploads(), tus() and download()', () => {
    const route = uploads<AuthEnv>({
      storage,
      progress: {
        publisher: { publish: async () => undefined },
        topic: (c) => {
          expectTypeOf(c.var.user).toEqualTypeOf<AuthUser>()
          return `user:${c.var.user.id}`
        },
      },
      onComplete: (result, c) => {
        expectTypeOf(result.files).toEqualTypeOf<StoredFile[]>()
        return c.json({ by: c.var.user.id })
      },
    })
    const resumable = tus<AuthEnv>({ storage, owner: (c) => c.var.user.id })
    const files = download<AuthEnv>({ storage, authorize: (file, c) => file.owner === c.var.user.id })
    new Hono().post('/upload', route).route('/tus', resumable).get('/files/:id', files)
  })

  it('reports a misspelt or mistyped option', () => {
    // @ts-expect-error `fileSizee` is not a limit
    uploads({ limits: { fileSizee: 1 } })
    // @ts-expect-error allowedTypes is a list of MIME types
    uploads({ allowedTypes: 'image/png' })
    // @ts-expect-error tus needs a storage
    tus({})
    // @ts-expect-error disposition is 'attachment' or 'inline'
    download({ storage, disposition: 'download' })
  })
})
