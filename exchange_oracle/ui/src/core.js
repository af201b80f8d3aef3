// Shared by every part of the page: constants, the state (the segment list in `state.segs`
// is the truth; regions on the waveform are drawn from it), the playhead, small helpers.
import { ws } from './wave.js'


export const SAVE_DELAY_MS = 700
export const FLASH_MS = 8000
export const RETRY_MS = 3000
export const NEW_SEGMENT_MS = 2000
export const NUDGE_MS = 50
export const SNAP_PX = 8
export const MAX_REGIONS = 300 // regions drawn at once; more are left to the segment strip
export const MAX_PEAK_POINTS = 2_000_000 // a finer zoom level is fetched only below this many pixels
export const COLORS = ['#2f6fde', '#d9480f', '#2b8a3e', '#ae3ec9', '#e67700', '#1098ad', '#c2255c', '#5c940d', '#364fc7']

export const $ = (selector) => document.querySelector(selector)
export const path = location.pathname
export const assignmentId = decodeURIComponent(path.slice(path.lastIndexOf('/annotate/') + 10).split('/')[0])
export const root = path.slice(0, path.lastIndexOf('/annotate/')) // the oracle may sit under a prefix

export const state = {
  info: null,
  segs: [], // {key, start, end, label, transcription, attributes} in clip milliseconds
  selected: null,
  undo: [],
  redo: [],
  savedJson: '[]',
  saving: false,
  saveAgain: false,
  saveTimer: null,
  feedback: null,
  feedbackKeys: [], // the segment each of the feedback's numbers names
  loadedZoom: 0,
  defaultLabel: null,
  textEditKey: null, // the segment whose transcription is being typed (one undo step)
  finished: false,
  playhead: 0, // ms
  marking: null, // ms where the segment being marked while playing starts
  base: '', // '/practice' while the escrow's practice clip is shown instead of the job
}
export const practising = () => state.base === '/practice'
export let nextKey = 1
export const newKey = (prefix) => `${prefix}${nextKey++}`

// -- time and text helpers -----------------------------------------------------------------

export function clock(ms) {
  const total = Math.max(0, Math.round(ms))
  const h = Math.floor(total / 3_600_000)
  const m = Math.floor((total % 3_600_000) / 60_000)
  const s = ((total % 60_000) / 1000).toFixed(3).padStart(6, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

// The playhead is ours: the media element reports a seek's position only once it settles,
// so quick key presses would otherwise start from a stale time.
export const nowMs = () => state.playhead
export function seek(ms) {
  state.playhead = Math.round(Math.min(clipMs(), Math.max(0, ms)))
  ws.setTime(state.playhead / 1000)
  showClock()
}
export const showClock = () => ($('#clock').textContent = `${clock(state.playhead)} / ${clock(clipMs())}`)
export const clipMs = () => state.info.clip_ms
export const labelOf = (name) => state.info.labels.find((label) => label.name === name)
export const colorOf = (name) => {
  const index = state.info.labels.findIndex((label) => label.name === name)
  return COLORS[(index < 0 ? 0 : index) % COLORS.length]
}
// Where a segment came from, as CVAT keeps it: a VAD pre-segment (auto) or a requester's
// suggestion (file) stays so while it is as it came; changed, it is semi-auto; the
// worker's own are manual.
export const fingerprint = (seg) =>
  JSON.stringify([seg.start, seg.end, seg.label, seg.transcription, Object.entries(seg.attributes).filter(([, v]) => v !== '').sort()])
export function sourceOf(seg) {
  if (!seg.source || seg.source === 'manual') return 'manual'
  return seg.origin && seg.origin === fingerprint(seg) ? seg.source : 'semi-auto'
}
export const sorted = () => [...state.segs].sort((a, b) => a.start - b.start || a.end - b.end)
export const byKey = (key) => state.segs.find((seg) => seg.key === key)

export let flashTimer = 0
export function flash(text, { stay = false } = {}) {
  // A message is about the last action: it goes with the next one, or after a while.
  const box = $('#message')
  box.textContent = text
  box.hidden = !text
  clearTimeout(flashTimer)
  if (text && !stay) flashTimer = setTimeout(() => flash(''), FLASH_MS)
}
