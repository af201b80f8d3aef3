// Builds the annotator page into exchange_oracle/ui/dist: one JS and one CSS bundle with
// content-hashed names (wavesurfer.js from node_modules, pinned by package-lock.json; no
// CDN), and annotate.html naming them. Run by `make install` and the Dockerfile.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, 'dist')
rmSync(dist, { recursive: true, force: true })
mkdirSync(dist)

const result = await esbuild.build({
  entryPoints: { annotate: join(here, 'src', 'annotate.js') },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2020',
  outdir: dist,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
})
const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path))
const script = outputs.find((name) => name.endsWith('.js'))
const style = outputs.find((name) => name.endsWith('.css'))
const page = readFileSync(join(here, 'annotate.html'), 'utf8')
  .replace('{{script}}', script)
  .replace('{{style}}', style)
writeFileSync(join(dist, 'annotate.html'), page)
console.log(`annotator page built: ${script}, ${style}`)
