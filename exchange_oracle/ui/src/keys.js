// Controls and the keyboard: every action has a key; controls used with the mouse give the
// keys back to the page.
import { refuseStatus } from './api.js'
import { $, NUDGE_MS, byKey, clipMs, clock, colorOf, flash, nowMs, seek, sorted, state } from './core.js'
import { isDirty, save, saveNow, submit } from './save.js'
import { commit, deleteSelected, duplicateSelected, extendFromPrevious, markAtPlayhead, mergeSelected, newSegmentAtPlayhead, redo, select, selectNeighbour, setAttributeByNumber, setEdge, setLabel, splitSelected, toggleLock, undo } from './segments.js'
import { toggleSpectrogram } from './spectrogram.js'
import { applyZoom, regions, ws } from './wave.js'

// -- controls and keys -------------------------------------------------------------------------

export function bindControls() {
  $('#play').addEventListener('click', () => ws.playPause())
  $('#back').addEventListener('click', () => seek(nowMs() - 5000))
  $('#forward').addEventListener('click', () => seek(nowMs() + 5000))
  $('#play-region').addEventListener('click', playSelected)
  $('#speed').addEventListener('change', (e) => ws.setPlaybackRate(Number(e.target.value), true))
  $('#volume').addEventListener('input', (e) => ws.setVolume(Number(e.target.value)))
  $('#zoom').addEventListener('input', () => applyZoom())
  $('#amplitude').addEventListener('input', (e) => ws.setOptions({ barHeight: Number(e.target.value) }))
  $('#spectrogram').addEventListener('change', (e) => toggleSpectrogram(e.target.checked))
  $('#submit').addEventListener('click', submit)
  $('#help-button').addEventListener('click', () => $('#help').showModal())
  $('#split').addEventListener('click', splitSelected)
  $('#merge').addEventListener('click', mergeSelected)
  $('#delete').addEventListener('click', deleteSelected)
  $('#undo').addEventListener('click', undo)
  $('#redo').addEventListener('click', redo)
  $('#editor-form').addEventListener('submit', (e) => e.preventDefault())
  const seconds = (input) => Math.round(Number(input.value) * 1000)
  $('#seg-start').addEventListener('change', (e) => setEdge('start', seconds(e.target)))
  $('#seg-end').addEventListener('change', (e) => setEdge('end', seconds(e.target)))
  $('#seg-label').addEventListener('change', (e) => setLabel(e.target.value))
  const text = $('#seg-text')
  text.lang = state.info.language
  text.addEventListener('input', () => {
    const seg = byKey(state.selected)
    if (!seg) return
    const first = state.textEditKey !== seg.key
    state.textEditKey = seg.key
    commit(() => {
      seg.transcription = text.value
      return null
    }, { coalesce: !first })
  })
  text.addEventListener('blur', () => (state.textEditKey = null))
  window.addEventListener('beforeunload', (e) => {
    if (!state.finished && isDirty()) {
      save()
      e.preventDefault()
    }
  })
  document.addEventListener('keydown', onKey)
  $('#goto').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return
    e.preventDefault()
    const ms = parseClock(e.target.value)
    if (ms === null) return flash('Go to: a time like 83.5, 1:23.5 or 1:02:03.')
    seek(ms)
    e.target.value = ''
    e.target.blur()
  })
  const wave = $('#waveform')
  wave.addEventListener('wheel', (e) => {
    if (!e.ctrlKey && !e.metaKey) return // a plain wheel scrolls the waveform
    e.preventDefault()
    stepInput('#zoom', e.deltaY < 0 ? 5 : -5)
  }, { passive: false })
  wave.addEventListener('mousemove', (e) => {
    const box = wave.getBoundingClientRect()
    const x = e.clientX - box.left + ws.getScroll()
    $('#hover-time').textContent = clock((x / ws.getWrapper().scrollWidth) * clipMs())
  })
  wave.addEventListener('mouseleave', () => ($('#hover-time').textContent = ''))
  // A control used with the mouse gives the keyboard back: Space, arrows and letters are the
  // page's keys again, not the last button's, checkbox's or slider's.
  document.addEventListener('click', (e) => {
    const button = e.target.closest?.('button')
    if (button && e.detail > 0 && !button.closest('dialog')) button.blur() // a mouse click
  })
  document.addEventListener('change', (e) => {
    if (e.target.matches?.('.transport select, .transport input')) e.target.blur()
  })
}

export function playSelected() {
  const seg = byKey(state.selected)
  if (!seg) return
  seek(seg.start) // the page's playhead too, so the keys that follow act from here
  const region = regions.getRegions().find((r) => r.id === seg.key)
  if (region) return region.play(!$('#loop').checked)
  ws.play(seg.start / 1000, $('#loop').checked ? undefined : seg.end / 1000) // out of view
}

// Typing while listening (ELAN's transcription mode): in the transcription box, Enter moves
// to the next segment and plays it, Ctrl+Space plays or pauses, Ctrl+R replays the segment,
// Alt+arrows skip a second. The text is saved as it is typed.
export const SKIP_MS = 1000
function transcriptionKey(e, ctrl) {
  if (ctrl && (e.code === 'Space' || e.key === ' ')) return () => ws.playPause()
  if (ctrl && e.key.toLowerCase() === 'r') return playSelected
  if (e.altKey && e.key === 'ArrowLeft') return () => seek(nowMs() - SKIP_MS)
  if (e.altKey && e.key === 'ArrowRight') return () => seek(nowMs() + SKIP_MS)
  if (e.key === 'Enter' && !e.shiftKey && !ctrl) return nextAndPlay
  return null
}

function nextAndPlay() {
  const order = sorted()
  const index = order.findIndex((seg) => seg.key === state.selected)
  const next = order[index + 1]
  if (!next) {
    flash('That was the last segment: Ctrl+Enter submits.')
    return
  }
  ws.pause()
  const text = $('#seg-text')
  text.blur() // the editor fills a box only when it is not being typed in
  select(next.key)
  $(`#segments [data-key="${next.key}"]`)?.scrollIntoView({ block: 'nearest' })
  text.focus()
  text.setSelectionRange(text.value.length, text.value.length)
  playSelected()
}

export function onKey(e) {
  if (state.finished) return
  const typing = e.target.closest?.('input, textarea, select')
  const ctrl = e.ctrlKey || e.metaKey
  if (ctrl && e.key === 'Enter') return e.preventDefault(), submit()
  if (ctrl && e.key.toLowerCase() === 's') return e.preventDefault(), save()
  if (typing) {
    const action = e.target.id === 'seg-text' && transcriptionKey(e, ctrl)
    if (action) return e.preventDefault(), action()
    if (e.key === 'Escape') e.target.blur()
    return
  }
  if ($('#help').open) return
  if (ctrl && e.key.toLowerCase() === 'z') return e.preventDefault(), e.shiftKey ? redo() : undo()
  if (ctrl && e.key.toLowerCase() === 'y') return e.preventDefault(), redo()
  if (ctrl || (e.altKey && !e.key.startsWith('Arrow'))) return
  const seg = byKey(state.selected)
  const actions = {
    ' ': () => ws.playPause(),
    Home: () => seek(0),
    End: () => seek(clipMs()),
    ArrowLeft: () => (e.altKey ? nudge(-1, e.shiftKey) : seek(nowMs() - (e.shiftKey ? 5000 : 100))),
    ArrowRight: () => (e.altKey ? nudge(1, e.shiftKey) : seek(nowMs() + (e.shiftKey ? 5000 : 100))),
    ArrowUp: () => (e.shiftKey ? stepInput('#amplitude', 1) : selectNeighbour(-1)),
    ArrowDown: () => (e.shiftKey ? stepInput('#amplitude', -1) : selectNeighbour(1)),
    Enter: () => seg && ($('#seg-text').focus(), playSelected()),
    Escape: () => select(null, { seek: false }),
    Delete: deleteSelected, // Backspace does not delete: it is the key for text, pressed by habit
    n: newSegmentAtPlayhead,
    e: extendFromPrevious,
    b: markAtPlayhead,
    t: () => $('#goto').focus(),
    '[': () => setEdge('start', nowMs()),
    ']': () => setEdge('end', nowMs()),
    s: splitSelected,
    m: mergeSelected,
    p: playSelected,
    l: () => ($('#loop').checked = !$('#loop').checked),
    g: () => ($('#snap').checked = !$('#snap').checked),
    v: () => toggleSpectrogram(),
    k: toggleLock,
    d: duplicateSelected,
    '+': () => stepInput('#zoom', 10),
    '=': () => stepInput('#zoom', 10),
    '-': () => stepInput('#zoom', -10),
    '<': () => stepSelect('#speed', -1),
    '>': () => stepSelect('#speed', 1),
    '?': () => $('#help').showModal(),
  }
  let action = actions[e.key] || actions[e.key.toLowerCase()]
  if (/^Digit[1-9]$/.test(e.code) && e.shiftKey) {
    action = () => setAttributeByNumber(Number(e.code.slice(5)))
  } else if (/^[1-9]$/.test(e.key)) {
    const label = state.info.labels[Number(e.key) - 1]
    if (label) action = () => setLabel(label.name)
  }
  if (!action) return
  e.preventDefault()
  action()
}

// "83.5", "1:23.5", "1:02:03.25" -> ms; null when it is not a time
export function parseClock(text) {
  const parts = text.trim().split(':')
  if (!parts[0] || parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return null
  return Math.round(parts.reduce((total, part) => total * 60 + Number(part), 0) * 1000)
}

export function nudge(direction, startSide) {
  const seg = byKey(state.selected)
  if (!seg) return
  const side = startSide ? 'start' : 'end'
  setEdge(side, seg[side] + direction * NUDGE_MS)
}

export function stepInput(selector, step) {
  const input = $(selector)
  input.value = String(Math.min(Number(input.max), Math.max(Number(input.min), Number(input.value) + step * Number(input.step))))
  input.dispatchEvent(new Event('input'))
}

export function stepSelect(selector, step) {
  const select = $(selector)
  select.selectedIndex = Math.min(select.options.length - 1, Math.max(0, select.selectedIndex + step))
  select.dispatchEvent(new Event('change'))
}

export function buildLabelBar() {
  const bar = $('#labels')
  const choice = $('#seg-label')
  state.info.labels.forEach((label, index) => {
    const button = document.createElement('button')
    button.type = 'button'
    button.dataset.label = label.name
    button.style.setProperty('--label-color', colorOf(label.name))
    button.textContent = index < 9 ? `${index + 1} ${label.name}` : label.name
    const tally = document.createElement('span')
    tally.className = 'tally' // how many segments have it, and for how long
    button.append(' ', tally)
    button.addEventListener('click', () => setLabel(label.name))
    bar.append(button)
    choice.append(new Option(label.name, label.name))
  })
}

const EXPIRY_WARN_MS = 3 * 60_000
const EXPIRY_SAVE_MS = 10_000

// The time left; a warning three minutes before the end, and whatever is unsaved saved
// ten seconds before it, so nothing is lost when the page turns read-only.
export function showExpiry() {
  const ends = Date.parse(state.info.expires_at)
  let warned = false
  let saved = false
  const tick = async () => {
    const left = ends - Date.now()
    if (left <= 0) return refuseStatus('expired', state.info.expires_at)
    if (left <= EXPIRY_WARN_MS && !warned) {
      warned = true
      $('#expires').classList.add('ending')
      flash(`This assignment ends in ${Math.max(1, Math.round(left / 60_000))} min: submit before then. Your work is saved as you go.`, { stay: true })
    }
    if (left <= EXPIRY_SAVE_MS && !saved) {
      saved = true
      await saveNow().catch(() => false)
    }
    const minutes = Math.floor(left / 60_000)
    $('#expires').textContent = left < 60_000 ? `${Math.ceil(left / 1000)} s left` : `${minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`} left`
    const next = [left - EXPIRY_WARN_MS, left - EXPIRY_SAVE_MS, left].filter((ms) => ms > 0)
    setTimeout(tick, Math.min(left < 60_000 ? 1000 : 30_000, ...next))
  }
  tick()
}
