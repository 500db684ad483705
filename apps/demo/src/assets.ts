import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Context } from 'hono'

const publicDir = fileURLToPath(new URL('../public/', import.meta.url))
const tsconfig = fileURLToPath(new URL('../public/tsconfig.json', import.meta.url))
// `npm run build` bundles the page next to the compiled server (dist/public/app.js); from source
// (npm run dev, the tests) it is bundled with esbuild on first request.
const prebuilt = fileURLToPath(new URL('./public/app.js', import.meta.url))

export interface ClientAssets {
  html(c: Context): Promise<Response>
  script(c: Context): Promise<Response>
  styles(c: Context): Promise<Response>
}

/** Bundles public/app.ts with @flumen/client's browser build (esbuild is a dev dependency). */
const bundlePage = async (): Promise<string> => {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: [`${publicDir}app.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    tsconfig,
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.text
}

// The page's script: the prebuilt bundle when there is one, else bundled once on first request.
export const clientAssets = (): ClientAssets => {
  let bundle: Promise<string> | undefined
  const script = (): Promise<string> => {
    bundle ??= readFile(prebuilt, 'utf8').catch(bundlePage)
    bundle.catch(() => {
      bundle = undefined
    })
    return bundle
  }
  const file = (name: string): Promise<string> => readFile(`${publicDir}${name}`, 'utf8')
  const csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
  return {
    html: async (c) => c.html(await file('index.html'), 200, { 'content-security-policy': csp }),
    script: async (c) =>
      c.body(await script(), 200, {
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'no-cache',
      }),
    styles: async (c) => c.body(await file('styles.css'), 200, { 'content-type': 'text/css; charset=utf-8' }),
  }
}
