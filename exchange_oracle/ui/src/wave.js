// The waveform: wavesurfer.js drawn from the oracle's peaks (no decoding in the browser),
// zoom levels fetched as needed, regions and the playhead kept in step with the model.
import WaveSurfer from 'wavesurfer.js'
import MinimapPlugin from 'wavesurfer.js/dist/plugins/minimap.esm.js'
import RegionsPlugin from 'wavesurfer.js/dist/plugins/regions.esm.js'
import TimelinePlugin from 'wavesurfer.js/dist/plugins/timeline.esm.js'
import { api } from './api.js'
import { $, MAX_PEAK_POINTS, byKey, clipMs, flash, root, showClock, state } from './core.js'
import { drawRegions, drawnRegions } from './draw.js'
import { addSegment, commit, place, select, snapMs } from './segments.js'
import { drawSpectrogram } from './spectrogram.js'

export let ws = null
export let regions = null

// -- the waveform -----------------------------------------------------------------------------

export async function fetchPeaks(zoom) {
  const doc = await api('GET', `${state.base}/peaks?zoom=${zoom}`)
  const scale = doc.bits === 16 ? 32768 : 128
  const n = doc.length ?? doc.data.length / 2
  const top = new Float32Array(n)
  const bottom = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    bottom[i] = doc.data[2 * i] / scale
    top[i] = doc.data[2 * i + 1] / scale
  }
  return [top, bottom]
}

export function zoomFor(pxPerSec) {
  // the coarsest peaks level that still gives at least one point per pixel
  const seconds = clipMs() / 1000
  const levels = state.info.peaks_zooms.filter((z) => z * seconds <= MAX_PEAK_POINTS).sort((a, b) => a - b)
  return levels.find((z) => z >= pxPerSec) || levels.at(-1) || state.info.peaks_zooms[0]
}

export function sliderToPxPerSec(value) {
  const fit = $('#waveform').clientWidth / (clipMs() / 1000)
  return value <= 0 ? 0 : fit * Math.pow(1000 / Math.max(fit, 0.01), value / 100) // fit .. 1000 px/s
}

export async function applyZoom() {
  const px = sliderToPxPerSec(Number($('#zoom').value))
  const effective = px || $('#waveform').clientWidth / (clipMs() / 1000)
  const wanted = zoomFor(effective)
  if (wanted > state.loadedZoom) {
    state.loadedZoom = wanted
    const peaks = await fetchPeaks(wanted)
    ws.setOptions({ peaks, duration: clipMs() / 1000 })
  }
  ws.zoom(px)
}

export function createWave(peaks) {
  const info = state.info
  const minimap = MinimapPlugin.create({ container: '#minimap', height: 36, waveColor: '#b8c6db', progressColor: '#6d86ad', normalize: true })
  ws = WaveSurfer.create({
    container: '#waveform',
    height: 150,
    url: `${root}${info.audio_url}`,
    peaks,
    duration: info.clip_ms / 1000,
    normalize: true,
    waveColor: '#8aa4c8',
    progressColor: '#3b5b8c',
    cursorColor: '#d6336c',
    cursorWidth: 2,
    autoScroll: true,
    autoCenter: false,
    dragToSeek: false,
    plugins: [
      TimelinePlugin.create({ height: 18 }),
      minimap,
    ],
  })
  regions = ws.registerPlugin(RegionsPlugin.create())
  regions.enableDragSelection({ color: 'rgba(47, 111, 222, 0.2)' })
  regions.on('region-created', (region) => {
    if (byKey(region.id)) return // drawn from the model
    const start = snapMs(Math.round(region.start * 1000))
    const end = snapMs(Math.round(region.end * 1000))
    region.remove()
    if (end - start >= 10) addSegment(start, end)
  })
  regions.on('region-updated', (region, side) => {
    const seg = byKey(region.id)
    if (!seg) return
    let start = Math.round(region.start * 1000)
    let end = Math.round(region.end * 1000)
    if (side !== 'end') start = snapMs(start)
    if (side !== 'start') end = snapMs(end)
    if (!side) end = start + (seg.end - seg.start) // a move keeps the length
    state.selected = seg.key
    if (!commit(() => place(seg, start, end))) {
      drawnRegions.delete(seg.key) // refused: the region goes back to where the data says
      drawRegions()
    }
  })
  regions.on('region-clicked', (region, event) => {
    event.stopPropagation()
    select(region.id)
  })
  regions.on('region-double-clicked', (region) => region.play(true))
  regions.on('region-out', (region) => {
    if ($('#loop').checked && region.id === state.selected && ws.isPlaying()) region.play()
  })
  ws.on('decode', () => drawRegions())
  let pending = 0
  const redrawSoon = () => {
    cancelAnimationFrame(pending)
    pending = requestAnimationFrame(() => {
      drawRegions()
      drawSpectrogram()
    })
  }
  ws.on('scroll', redrawSoon)
  ws.on('zoom', redrawSoon)
  showClock()
  const follow = (seconds) => {
    state.playhead = Math.round(seconds * 1000)
    showClock()
  }
  ws.on('audioprocess', follow) // while playing
  ws.on('interaction', follow) // a click or drag on the waveform
  minimap.on('interaction', follow) // or on the minimap (it seeks the audio itself)
  ws.on('play', () => ($('#play').textContent = '❚❚ Pause'))
  ws.on('pause', () => ($('#play').textContent = '▶ Play'))
  ws.on('error', (err) => flash(`Audio: ${err.message || err}`))
  return new Promise((resolve) => ws.once('redrawcomplete', resolve))
}
