#!/usr/bin/env node
// Uploads one file with the real tus-js-client (Node build, unmodified) and prints one
// JSON object on stdout: {ok, url, bytesSent, bytesAccepted, requests, lastResponse, error}.
// Exit status: 0 on success, 1 when the upload failed or was stopped, 2 on bad arguments.
// tests/support/clients.py installs the pinned tus-js-client into tests/.cache/node and runs this.
//
//   node tests/support/tus_js_upload.cjs --endpoint http://127.0.0.1:8000/tus/ --file big.bin \
//        [--protocol tus-v1|ietf-draft-05] [--parallel 4] [--chunk-size 1048576]
//        [--token T] [--upload-url URL] [--stop-after BYTES] [--source file|buffer]
//        [--name NAME] [--type MIME] [--retry-delays 0,200] [--client-dir DIR]
//        [--override-patch yes] (POST with X-HTTP-Method-Override: PATCH)
//        [--data-during-creation yes] (the first chunk rides on the POST)
//        [--defer-length yes] (Upload-Defer-Length: 1; the length comes with the last PATCH)
//        [--meta JSON] (more metadata, e.g. {"relativePath": "a/b/c.txt", "folder": ID})
'use strict'

const fs = require('fs')
const path = require('path')

const OPTIONS = {
  endpoint: null,
  file: null,
  protocol: 'tus-v1',
  parallel: '1',
  'chunk-size': null,
  token: null,
  'upload-url': null,
  'stop-after': null,
  source: 'file',
  name: null,
  type: 'application/octet-stream',
  'retry-delays': '0,200,500',
  'client-dir': path.join(__dirname, '.cache', 'node'),
  'override-patch': 'no',
  'data-during-creation': 'no',
  'defer-length': 'no',
  meta: '{}',
}

function usage(message) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `usage: ${message}` })}\n`)
  process.exit(2)
}

function parseArgs(argv) {
  const options = { ...OPTIONS }
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]
    if (!flag.startsWith('--') || !(flag.slice(2) in OPTIONS)) usage(`unknown option ${flag}`)
    if (i + 1 >= argv.length) usage(`${flag} needs a value`)
    options[flag.slice(2)] = argv[i + 1]
  }
  if (!options.endpoint && !options['upload-url']) usage('--endpoint or --upload-url is required')
  if (!options.file) usage('--file is required')
  if (!['tus-v1', 'ietf-draft-05'].includes(options.protocol)) {
    usage(`--protocol must be tus-v1 or ietf-draft-05, not ${options.protocol}`)
  }
  if (!['file', 'buffer'].includes(options.source)) usage('--source must be file or buffer')
  return options
}

function loadClient(clientDir) {
  const entry = path.join(clientDir, 'node_modules', 'tus-js-client')
  try {
    return require(entry)
  } catch (err) {
    process.stdout.write(
      `${JSON.stringify({ ok: false, error: `tus-js-client not found under ${clientDir}: ${err.message}` })}\n`,
    )
    process.exit(2)
  }
}

// Only the fields a test asserts on: which requests went out and what came back.
const TRACED_REQUEST_HEADERS = [
  'Tus-Resumable', 'Upload-Concat', 'Upload-Complete', 'Upload-Offset', 'Upload-Length',
  'Upload-Defer-Length', 'Upload-Draft-Interop-Version', 'Content-Type',
  'X-HTTP-Method-Override',
]

function responseHeaders(res) {
  const raw = res && res.getUnderlyingObject && res.getUnderlyingObject()
  return raw && raw.headers ? { ...raw.headers } : {}
}

function main() {
  const options = parseArgs(process.argv.slice(2))
  const tus = loadClient(options['client-dir'])
  const filePath = path.resolve(options.file)
  let size
  try {
    size = fs.statSync(filePath).size
  } catch (err) {
    usage(`cannot read --file: ${err.message}`)
  }

  // 'file' streams from disk through tus-js-client's own fs.ReadStream source (what a
  // Node user writes); 'buffer' holds the whole file in memory (its Buffer source).
  const input =
    options.source === 'buffer' ? fs.readFileSync(filePath) : fs.createReadStream(filePath)

  const stopAfter = options['stop-after'] === null ? null : Number(options['stop-after'])
  const requests = []
  let bytesSent = 0
  let bytesAccepted = 0
  let finished = false
  let upload = null

  function finish(code, result) {
    if (finished) return
    finished = true
    process.stdout.write(
      `${JSON.stringify({ url: upload.url, bytesSent, bytesAccepted, size, requests, ...result })}\n`,
    )
    // Leave no socket or timer to keep the process alive.
    process.exit(code)
  }

  const uploadOptions = {
    endpoint: options.endpoint,
    uploadUrl: options['upload-url'],
    protocol: options.protocol,
    parallelUploads: Number(options.parallel),
    metadata: {
      filename: options.name || path.basename(filePath),
      filetype: options.type,
      ...JSON.parse(options.meta),
    },
    headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
    retryDelays: options['retry-delays'] === 'none'
      ? null
      : options['retry-delays'].split(',').filter(Boolean).map(Number),
    overridePatchMethod: options['override-patch'] === 'yes',
    uploadDataDuringCreation: options['data-during-creation'] === 'yes',
    uploadLengthDeferred: options['defer-length'] === 'yes',
    // Resuming is by --upload-url; no fingerprint store between runs.
    storeFingerprintForResuming: false,
    onBeforeRequest(req) {
      const headers = {}
      for (const name of TRACED_REQUEST_HEADERS) {
        const value = req.getHeader(name)
        if (value !== undefined) headers[name] = String(value)
      }
      requests.push({ method: req.getMethod(), url: req.getURL(), headers, status: null })
    },
    onAfterResponse(req, res) {
      for (let i = requests.length - 1; i >= 0; i -= 1) {
        const entry = requests[i]
        if (entry.status === null && entry.method === req.getMethod() && entry.url === req.getURL()) {
          entry.status = res.getStatus()
          break
        }
      }
    },
    onProgress(sent) {
      bytesSent = sent
    },
    onChunkComplete(_chunk, accepted) {
      bytesAccepted = accepted
      if (stopAfter !== null && accepted >= stopAfter && accepted < size) {
        upload.abort(false).then(() => finish(1, { ok: false, stopped: true, error: null }))
      }
    },
    onSuccess(payload) {
      const last = payload && payload.lastResponse
      finish(0, {
        ok: true,
        error: null,
        lastResponse: last ? { status: last.getStatus(), headers: responseHeaders(last) } : null,
      })
    },
    onError(err) {
      const res = err.originalResponse
      finish(1, {
        ok: false,
        error: String(err.message || err),
        lastResponse: res
          ? { status: res.getStatus(), headers: responseHeaders(res), body: res.getBody() }
          : null,
      })
    },
  }
  if (options['chunk-size'] !== null) uploadOptions.chunkSize = Number(options['chunk-size'])

  upload = new tus.Upload(input, uploadOptions)
  upload.start()
}

main()
