// The segment model: every change goes through commit() (undo, redraw, autosave); adding,
// splitting, merging, deleting, selecting, and the rules a change must keep.
import { $, NEW_SEGMENT_MS, SNAP_PX, byKey, clipMs, clock, flash, labelOf, newKey, nowMs, seek, sorted, state } from './core.js'
import { render } from './draw.js'
import { scheduleSave } from './save.js'
import { ws } from './wave.js'

// -- the segment model: every change goes through commit() (undo, redraw, autosave) -----

export const snapshot = () => JSON.stringify({ segs: state.segs, selected: state.selected })

export function commit(change, { coalesce = false } = {}) {
  const before = snapshot()
  const refusal = change()
  if (refusal) {
    flash(refusal)
    render()
    return false
  }
  if (!coalesce) state.undo.push(before)
  if (state.undo.length > 200) state.undo.shift()
  state.redo = []
  flash('')
  render()
  scheduleSave()
  return true
}

export function restore(json) {
  const doc = JSON.parse(json)
  state.segs = doc.segs
  state.selected = doc.selected
  state.textEditKey = null
  render()
  scheduleSave()
}

export function undo() {
  if (!state.undo.length) return
  flash('') // whatever it said was about what is now undone
  state.redo.push(snapshot())
  restore(state.undo.pop())
}

export function redo() {
  if (!state.redo.length) return
  flash('')
  state.undo.push(snapshot())
  restore(state.redo.pop())
}

export function overlapRefusal(seg) {
  if (state.info.allow_overlap) return null
  const other = state.segs.find((o) => o.key !== seg.key && o.start < seg.end && seg.start < o.end)
  return other ? `Segments may not overlap in this job (it would overlap ${clock(other.start)}–${clock(other.end)}).` : null
}

export function boundsRefusal(seg) {
  if (!(seg.start >= 0 && seg.end <= clipMs())) return 'A segment must lie inside the clip.'
  if (seg.end <= seg.start) return `A segment must end after it starts (start ${clock(seg.start)}, end ${clock(seg.end)}).`
  if (seg.end - seg.start < 10) return 'A segment must be at least 10 ms long.'
  return null
}

export function snapMs(ms) {
  if (!$('#snap').checked) return ms
  const pxPerSec = ws ? ws.getWrapper().scrollWidth / (clipMs() / 1000) : 20
  const reach = Math.max(20, (SNAP_PX / pxPerSec) * 1000)
  let best = ms
  let distance = reach
  for (const edge of state.info.pre_segments.flat()) {
    if (Math.abs(edge - ms) <= distance) [best, distance] = [edge, Math.abs(edge - ms)]
  }
  return best
}

export const lockRefusal = (seg) =>
  seg.locked ? `The segment ${clock(seg.start)}–${clock(seg.end)} is locked: K unlocks it.` : null

export function place(seg, start, end) {
  const moved = { ...seg, start: Math.round(start), end: Math.round(end) }
  return lockRefusal(seg) || boundsRefusal(moved) || overlapRefusal(moved) || ((seg.start = moved.start), (seg.end = moved.end), null)
}

// Lock (CVAT's too): a locked segment cannot be moved, resized, edited or deleted until
// unlocked. It is the page's, not saved: it guards against slips while working around it.
export function toggleLock() {
  const seg = byKey(state.selected)
  if (!seg) return
  seg.locked = !seg.locked
  render()
  flash(seg.locked ? 'Locked: it cannot be changed until K unlocks it.' : 'Unlocked.')
}

// A copy of the selected segment at the same times (for two speakers at once, where the
// job allows overlaps), selected, with the same label, text and attributes.
export function duplicateSelected() {
  const seg = byKey(state.selected)
  if (!seg) return
  const copy = { ...seg, key: newKey('n'), attributes: { ...seg.attributes }, locked: false, source: 'manual', origin: undefined }
  commit(() => overlapRefusal(copy) || (state.segs.push(copy), (state.selected = copy.key), null))
}

export function addSegment(start, end) {
  const seg = {
    key: newKey('n'),
    start: Math.round(start),
    end: Math.round(end),
    label: state.defaultLabel,
    transcription: '',
    attributes: {},
  }
  return commit(() => {
    const refusal = boundsRefusal(seg) || overlapRefusal(seg)
    if (refusal) return refusal
    state.segs.push(seg)
    state.selected = seg.key
    return null
  })
}

// B begins a segment at the playhead and B again ends it there: marking while the audio
// plays (or step by step while paused).
export function markAtPlayhead() {
  const at = nowMs()
  if (state.marking === null) {
    state.marking = at
    $('#marking').hidden = false
    return
  }
  const [start, end] = [Math.min(state.marking, at), Math.max(state.marking, at)]
  state.marking = null
  $('#marking').hidden = true
  if (end - start < 10) return flash('The segment being marked would be empty: nothing added.')
  return addSegment(start, end)
}

export function newSegmentAtPlayhead() {
  const at = nowMs()
  const next = sorted().find((seg) => seg.start > at)
  const inside = state.segs.find((seg) => seg.start <= at && at < seg.end)
  if (inside && !state.info.allow_overlap) {
    flash('The playhead is inside a segment: move it to a gap first (or split this one with S).')
    return
  }
  const end = Math.min(at + NEW_SEGMENT_MS, next && !state.info.allow_overlap ? next.start : Infinity, clipMs())
  addSegment(at, end)
}

// E: a segment from the end of the last one before the playhead up to the playhead, as
// CVAT's "extend from the previous segment" (from the clip's start when there is none).
export function extendFromPrevious() {
  const at = nowMs()
  const before = sorted().filter((seg) => seg.end <= at)
  const start = before.length ? Math.max(...before.map((seg) => seg.end)) : 0
  if (at - start < 10) return flash('Move the playhead past the end of the previous segment first.')
  return addSegment(start, at)
}

// Shift+1..9: the selected segment's first choice attribute takes its 1st..9th value.
export function setAttributeByNumber(n) {
  const seg = byKey(state.selected)
  const attribute = seg && labelOf(seg.label)?.attributes.find((a) => a.values.length)
  const value = attribute?.values[n - 1]
  if (!value) return
  if (seg.locked) return flash(lockRefusal(seg))
  commit(() => {
    seg.attributes[attribute.name] = value
    return null
  })
}

export function setEdge(side, ms) {
  const seg = byKey(state.selected)
  if (!seg) return
  commit(() => (side === 'start' ? place(seg, ms, seg.end) : place(seg, seg.start, ms)))
}

export function splitSelected() {
  const seg = byKey(state.selected)
  const at = nowMs()
  if (!seg || !(seg.start + 10 < at && at < seg.end - 10)) {
    flash('Put the playhead inside the selected segment to split it.')
    return
  }
  commit(() => {
    const tail = { ...seg, key: newKey('n'), start: at, transcription: '', attributes: { ...seg.attributes } }
    seg.end = at
    state.segs.push(tail)
    state.selected = tail.key
    return null
  })
}

export function mergeSelected() {
  const seg = byKey(state.selected)
  const order = sorted()
  const next = seg && order[order.indexOf(seg) + 1]
  if (!next) {
    flash('There is no next segment to merge with.')
    return
  }
  commit(() => {
    seg.end = Math.max(seg.end, next.end)
    seg.transcription = [seg.transcription, next.transcription].filter(Boolean).join(' ')
    for (const [name, value] of Object.entries(next.attributes)) {
      if (!seg.attributes[name]) seg.attributes[name] = value
    }
    state.segs = state.segs.filter((s) => s !== next)
    return null
  })
}

export function deleteSelected() {
  const order = sorted()
  const index = order.findIndex((seg) => seg.key === state.selected)
  if (index < 0) return
  const gone = order[index]
  if (gone.locked) return flash(lockRefusal(gone))
  const done = commit(() => {
    state.segs = state.segs.filter((seg) => seg.key !== state.selected)
    const neighbour = order[index + 1] || order[index - 1]
    state.selected = neighbour && neighbour.key !== state.selected ? neighbour.key : null
    return null
  })
  if (done) {
    const what = gone.transcription ? ` and its transcription “${gone.transcription.slice(0, 40)}”` : ''
    flash(`Deleted the segment ${clock(gone.start)}–${clock(gone.end)}${what}. Ctrl+Z brings it back.`)
  }
}

export function select(key, { seek: move = true } = {}) {
  if (key !== state.selected) flash('')
  state.selected = key
  const seg = byKey(key)
  if (seg && move && ws) seek(seg.start)
  render()
}

export function selectNeighbour(step) {
  const order = sorted()
  if (!order.length) return
  const index = order.findIndex((seg) => seg.key === state.selected)
  const at = nowMs()
  let target
  if (index < 0) {
    target = step > 0 ? order.find((seg) => seg.end > at) || order.at(-1) : [...order].reverse().find((seg) => seg.start < at) || order[0]
  } else {
    target = order[Math.min(order.length - 1, Math.max(0, index + step))]
  }
  select(target.key)
  $(`#segments [data-key="${target.key}"]`)?.scrollIntoView({ block: 'nearest' })
}

export function setLabel(name) {
  state.defaultLabel = name
  const seg = byKey(state.selected)
  if (!seg) return render()
  commit(() => lockRefusal(seg) || ((seg.label = name), null))
}
