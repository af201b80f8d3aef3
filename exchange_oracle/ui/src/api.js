// The worker's token (from the link's fragment, kept for the tab), the oracle's API, and the
// pages that say why there is nothing to annotate.
import { $, assignmentId, root, state } from './core.js'
import { ws } from './wave.js'

// -- the worker's token and the API ------------------------------------------------------

export function takeToken() {
  const key = `annotate-token:${assignmentId}`
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromHash) {
    sessionStorage.setItem(key, fromHash)
    history.replaceState(null, '', location.pathname + location.search) // keep it out of sight
    return fromHash
  }
  return sessionStorage.getItem(key)
}
export const token = takeToken()

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : detail?.message || `HTTP ${status}`)
    this.status = status
    this.detail = detail
  }
}

export async function api(method, suffix, body) {
  const headers = { Authorization: `Bearer ${token}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let reply
  try {
    reply = await fetch(`${root}/assignment/${encodeURIComponent(assignmentId)}${suffix}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'the oracle cannot be reached; check your connection')
  }
  const data = await reply.json().catch(() => null)
  if (!reply.ok) throw new ApiError(reply.status, data?.detail ?? data)
  return data
}

// -- pages that say why there is nothing to annotate -------------------------------------

export function refuse(kind, title, text) {
  state.finished = true
  ws?.pause()
  document.body.dataset.state = kind
  $('#loading').hidden = true
  $('#app').hidden = true
  const box = $('#refusal')
  box.hidden = false
  box.querySelector('h1').textContent = title
  box.querySelector('p').textContent = text
  document.title = `${title} · audio annotation`
}

export function refuseError(err) {
  if (err.status === 401 || err.status === 403 || !token) {
    return refuse('signin', 'Your sign-in is not valid here',
      'It may have expired. Open the assignment again from HUMAN App.')
  }
  if (err.status === 404) {
    return refuse('foreign', 'This assignment is not yours',
      `There is no assignment ${assignmentId} for the account you are signed in with.`)
  }
  if (err.status === 409) {
    return refuse('finished', 'This assignment can no longer change', String(err.message))
  }
  return refuse('error', 'The assignment could not be loaded', String(err.message))
}

export function refuseStatus(status, expiresAt, rejectReason) {
  const when = new Date(expiresAt).toLocaleString()
  const pages = {
    expired: ['expired', 'This assignment has expired',
      `Its time ran out on ${when}. The job went back to the pool: take a new assignment in HUMAN App.`],
    completed: ['finished', 'This assignment is finished',
      'Its work was submitted and is being reviewed. Nothing more to do here.'],
    validation: ['finished', 'This assignment is finished',
      'Its work was submitted and is being reviewed. Nothing more to do here.'],
    rejected: ['finished', 'This assignment was rejected',
      rejectReason
        ? `Its work did not pass review: ${rejectReason}. The job went back to the pool. Next time, ` +
          'transcribe every word you hear as it is said, fill every field the job asks for, and ' +
          'keep each segment tight around its speech.'
        : 'Its work did not pass review; the job went back to the pool.'],
    canceled: ['canceled', 'This assignment was canceled',
      'It was given back or its escrow was canceled. Take a new assignment in HUMAN App.'],
  }
  const [kind, title, text] = pages[status] || ['finished', `This assignment is ${status}`, '']
  refuse(kind, title, text)
}
