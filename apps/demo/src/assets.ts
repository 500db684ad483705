import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Context } from 'hono'

const publicDir = fileURLToPath(new URL('../public/', import.meta.url))
const tsconfig = fileURLToPath(new URL('../public/tsconfig.json', import.meta.url))
// `npm run build` bundles the page next to the compiled server (dist/public/app.js and charts.js);
// from source (npm run dev, the tests) it is bundled with esbuild on first request.
const prebuiltDir = fileURLToPath(new URL('./public/', import.meta.url))
/**
 * The page's scripts: the page, the dashboard's charts it loads once the dashboard streams, and the
 * room's shared notes (Yjs) it loads once a room shows.
 */
const entries = ['app', 'charts', 'notes'] as const
type Entry = (typeof entries)[number]
// uPlot's own stylesheet, served after the page's.
const chartStyles = createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css')

export interface ClientAssets {
  html(c: Context): Promise<Response>
  script(c: Context, entry: Entry): Promise<Response>
  styles(c: Context): Promise<Response>
}

/** Bundles the page's scripts with @flumen/client's browser build (esbuild is a dev dependency). */
const bundlePage = async (): Promise<Record<Entry, string>> => {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: entries.map((entry) => `${publicDir}${entry}.ts`),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: '/out',
    tsconfig,
    logLevel: 'silent',
  })
  const text = (entry: Entry): string => result.outputFiles.find((f) => f.path.endsWith(`/${entry}.js`))!.text
  return { app: text('app'), charts: text('charts'), notes: text('notes') }
}

const readPrebuilt = async (): Promise<Record<Entry, string>> => ({
  app: await readFile(`${prebuiltDir}app.js`, 'utf8'),
  charts: await readFile(`${prebuiltDir}charts.js`, 'utf8'),
  notes: await readFile(`${prebuiltDir}notes.js`, 'utf8'),
})

// The page's scripts: the prebuilt bundles when there are some, else bundled once on first request.
export const clientAssets = (): ClientAssets => {
  let bundle: Promise<Record<Entry, string>> | undefined
  const scripts = (): Promise<Record<Entry, string>> => {
    bundle ??= readPrebuilt().catch(bundlePage)
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
    script: async (c, entry) =>
      c.body((await scripts())[entry], 200, {
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'no-cache',
      }),
    styles: async (c) =>
      c.body(`${await file('styles.css')}\n${await readFile(chartStyles, 'utf8')}`, 200, {
        'content-type': 'text/css; charset=utf-8',
      }),
  }
}
