// The spectrogram: tiles the oracle computed when it packed the clip (PNG, 0 Hz at the
// bottom, at two levels: 20 columns a second zoomed out, 100 close up), laid over the
// waveform in its scrolling wrapper and under the segments. Only the tiles in view (and
// one either side) are fetched, and none while too many would be; V toggles it.
import { token } from './api.js'
import { $, assignmentId, clipMs, flash, root, state } from './core.js'
import { ws } from './wave.js'

const tiles = new Map() // "level/tile" -> Promise of an object URL
const MAX_TILES = 40 // in view at once; zoomed out further, the page asks to zoom in
let layer = null
export let spectrogramShown = false

function fetchTile(level, index) {
  const key = `${level}/${index}`
  if (!tiles.has(key)) {
    const url = `${root}/assignment/${encodeURIComponent(assignmentId)}${state.base}/spectrogram/${index}?level=${level}`
    const request = fetch(url, { headers: { Authorization: `Bearer ${token}` } }).then((reply) => {
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`)
      return reply.blob()
    })
    tiles.set(key, request.then((blob) => URL.createObjectURL(blob)))
  }
  return tiles.get(key)
}

// The coarsest level that still gives a column per two pixels (the close one otherwise).
function levelFor(pxPerS) {
  const levels = (state.info.spectrogram.levels || [{ columns_per_s: state.info.spectrogram.columns_per_s, tiles: state.info.spectrogram.tiles }])
    .slice().sort((a, b) => a.columns_per_s - b.columns_per_s)
  return levels.find((l) => l.columns_per_s * 2 >= pxPerS) || levels.at(-1)
}

export function toggleSpectrogram(on = !spectrogramShown) {
  spectrogramShown = on
  $('#spectrogram').checked = on
  if (!layer) {
    layer = document.createElement('div')
    layer.className = 'spectrogram'
    layer.setAttribute('part', 'spectrogram')
    layer.style.cssText = 'position:absolute;top:0;left:0;pointer-events:none;z-index:2'
    ws.getWrapper().append(layer)
  }
  layer.hidden = !on
  if (!on) $('#spectrogram-hint').hidden = true
  drawSpectrogram()
}

export function drawSpectrogram() {
  if (!spectrogramShown || !layer) return
  const spec = state.info.spectrogram
  const wrapper = ws.getWrapper()
  const scroller = wrapper.parentElement
  const total = wrapper.scrollWidth
  const pxPerS = total / (clipMs() / 1000)
  const level = levelFor(pxPerS)
  const tileS = spec.tile_px / level.columns_per_s
  layer.style.width = `${total}px`
  layer.style.height = `${ws.options.height}px`
  const first = Math.max(0, Math.floor(scroller.scrollLeft / pxPerS / tileS) - 1)
  const last = Math.min(level.tiles - 1, Math.floor((scroller.scrollLeft + scroller.clientWidth) / pxPerS / tileS) + 1)
  const crowded = last - first + 1 > MAX_TILES
  $('#spectrogram-hint').hidden = !crowded
  for (const img of [...layer.children]) {
    const index = Number(img.dataset.tile)
    if (crowded || Number(img.dataset.level) !== level.columns_per_s || index < first || index > last) img.remove()
  }
  if (crowded) return
  for (let index = first; index <= last; index++) {
    let img = layer.querySelector(`img[data-tile="${index}"]`)
    if (!img) {
      img = document.createElement('img')
      img.dataset.tile = String(index)
      img.dataset.level = String(level.columns_per_s)
      img.alt = ''
      img.style.cssText = 'position:absolute;top:0;height:100%'
      layer.append(img)
      img.addEventListener('load', () => placeTile(img, pxPerSecond()))
      fetchTile(level.columns_per_s, index).then(
        (url) => (img.src = url),
        () => {
          flash('This clip has no spectrogram (it was prepared before they were made).')
          toggleSpectrogram(false)
        },
      )
    }
    placeTile(img, pxPerS)
  }
}

const pxPerSecond = () => ws.getWrapper().scrollWidth / (clipMs() / 1000)

function placeTile(img, pxPerS) {
  // A tile's own width in columns once it is loaded (the last one is narrower)
  const spec = state.info.spectrogram
  const index = Number(img.dataset.tile)
  const perS = Number(img.dataset.level)
  const columns = img.naturalWidth || Math.min(spec.tile_px, Math.ceil((clipMs() * perS) / 1000) - index * spec.tile_px)
  img.style.left = `${((index * spec.tile_px) / perS) * pxPerS}px`
  img.style.width = `${(columns / perS) * pxPerS}px`
}
