// The spectrogram: tiles the oracle computed when it packed the clip (PNG, 100 columns a
// second, 0 Hz at the bottom), laid over the waveform in its scrolling wrapper and under
// the segments. Only the tiles in view (and one either side) are fetched; V toggles it.
import { token } from './api.js'
import { $, assignmentId, clipMs, flash, root, state } from './core.js'
import { ws } from './wave.js'

const tiles = new Map() // tile index -> Promise of an object URL
let layer = null
export let spectrogramShown = false

function fetchTile(index) {
  if (!tiles.has(index)) {
    const url = `${root}/assignment/${encodeURIComponent(assignmentId)}${state.base}/spectrogram/${index}`
    const request = fetch(url, { headers: { Authorization: `Bearer ${token}` } }).then((reply) => {
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`)
      return reply.blob()
    })
    tiles.set(index, request.then((blob) => URL.createObjectURL(blob)))
  }
  return tiles.get(index)
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
  drawSpectrogram()
}

export function drawSpectrogram() {
  if (!spectrogramShown || !layer) return
  const spec = state.info.spectrogram
  const wrapper = ws.getWrapper()
  const scroller = wrapper.parentElement
  const total = wrapper.scrollWidth
  const pxPerS = total / (clipMs() / 1000)
  const tileS = spec.tile_px / spec.columns_per_s
  layer.style.width = `${total}px`
  layer.style.height = `${ws.options.height}px`
  const first = Math.max(0, Math.floor(scroller.scrollLeft / pxPerS / tileS) - 1)
  const last = Math.min(spec.tiles - 1, Math.floor((scroller.scrollLeft + scroller.clientWidth) / pxPerS / tileS) + 1)
  for (const img of [...layer.children]) {
    const index = Number(img.dataset.tile)
    if (index < first || index > last) img.remove()
  }
  for (let index = first; index <= last; index++) {
    let img = layer.querySelector(`img[data-tile="${index}"]`)
    if (!img) {
      img = document.createElement('img')
      img.dataset.tile = String(index)
      img.alt = ''
      img.style.cssText = 'position:absolute;top:0;height:100%'
      layer.append(img)
      img.addEventListener('load', () => placeTile(img, pxPerSecond()))
      fetchTile(index).then(
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
  const columns = img.naturalWidth || Math.min(spec.tile_px, Math.ceil((clipMs() * spec.columns_per_s) / 1000) - index * spec.tile_px)
  img.style.left = `${((index * spec.tile_px) / spec.columns_per_s) * pxPerS}px`
  img.style.width = `${(columns / spec.columns_per_s) * pxPerS}px`
}
