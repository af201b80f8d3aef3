// The practice clip: when the escrow has one and the worker has not cleared it, the page
// opens on it instead of the job. Nothing is saved while practising; Submit sends the try
// to be scored at once, and the answer says what was right and wrong and shows the answers.
import { api, refuse, refuseError } from './api.js'
import { $, clock, state } from './core.js'
import { payload } from './save.js'

// The practice clip's info in place of the job's, or the job's when there is none to do.
export async function practiceOr(info) {
  const standing = info.practice
  if (!standing || standing.cleared) return info
  if (standing.turned_away) {
    turnedAway(standing)
    return null
  }
  const drill = await api('GET', '/practice')
  state.base = '/practice'
  return drill
}

function turnedAway(standing) {
  refuse('practice', 'Practice clip not passed',
    `This escrow's jobs are for workers who passed its practice clip, and ${standing.attempts} tries did not. Thank you for trying.`)
}

export function showPracticeBanner() {
  const standing = state.info.practice
  const banner = $('#practice-banner')
  banner.hidden = false
  const tries = `${standing.attempts_left} ${standing.attempts_left === 1 ? 'try' : 'tries'} left`
  banner.querySelector('span').textContent = standing.required
    ? `Practice clip: pass it to work on this escrow (${tries}). It is checked the moment you submit and shows you the answers; it is not paid.`
    : `Practice clip (optional, ${tries}): it is checked the moment you submit and shows you the answers; it is not paid.`
  const skip = $('#practice-skip')
  skip.hidden = standing.required
  skip.onclick = async () => {
    await api('POST', '/practice/skip').catch(refuseError)
    location.reload()
  }
  $('#submit').textContent = 'Check my answers'
}

export async function submitPractice() {
  let reply
  try {
    reply = await api('POST', '/practice/submit', { segments: payload() })
  } catch (err) {
    return refuseError(err)
  }
  const box = $('#practice-result')
  const standing = reply.practice
  box.querySelector('h2').textContent = reply.passed ? 'Passed: well done' : 'Not passed yet'
  const reasons = box.querySelector('.reasons')
  reasons.replaceChildren(...(reply.reasons.length ? reply.reasons : ['Everything matched.']).map((text) => {
    const item = document.createElement('li')
    item.textContent = text
    return item
  }))
  box.querySelector('.answers').replaceChildren(...reply.answers.map((answer) => {
    const item = document.createElement('li')
    item.dir = 'auto'
    const attributes = Object.entries(answer.attributes).map(([k, v]) => `${k}: ${v}`).join(', ')
    item.textContent = `${clock(answer.start_ms)}–${clock(answer.end_ms)} ${answer.label}: ${answer.text}${attributes ? ` (${attributes})` : ''}`
    return item
  }))
  const next = $('#practice-next')
  if (standing.turned_away) {
    next.textContent = 'Close'
    next.onclick = () => turnedAway(standing)
  } else if (standing.cleared) {
    next.textContent = 'Go on to the job'
    next.onclick = () => location.reload()
  } else {
    next.textContent = `Try again (${standing.attempts_left} left)`
    next.onclick = () => location.reload()
  }
  box.showModal()
}
