// Resumable uploads for Stowage's page: a small tus 1.0 client (https://tus.io).
//
// The page's picker hands this module every file too large to travel as Datastar
// signals (a `resumable-files` event). Each file becomes an upload resource on the
// server (POST to the creation URL), then goes up in appends (PATCH) of at most
// `data-append-bytes`, so a proxy's request cap is never met and a lost connection
// costs at most the append in flight. The server keeps every byte that arrived; a HEAD
// tells where to go on from. The upload's URL is kept in localStorage under the file's
// fingerprint, so choosing the same file again after a reload or a browser restart
// continues instead of starting over.
//
// The module draws its own rows (a progress bar, Pause/Resume and Cancel) in the
// upload panel's `#resumable`. The shared list repaints through the page's live
// stream when the server stores the file, as for any other upload.
//
// It is also the page's upload queue: the picker and a drop hand it every file
// (`upload-files`). Each file gets its own row and progress bar, named; a file over
// the page's limit, over the quota left or past what a file request still takes is
// refused in its row before a byte is sent; the others go one at a time, small ones
// as one request each (`Single`), large ones resumably (`Upload`). Files chosen
// while one is on its way join the queue.
//
// On S3 storage with direct uploads on (the panel's `data-direct-uploads`), a file
// larger than what goes together through the node goes straight to the bucket
// instead (`DirectUpload`): the node only opens the session and checks the result.

const TUS_VERSION = '1.0.0';
// A batch of a dropped folder's small files (one multipart request) stops growing at
// the panel's `data-batch-files` (the server's limit of parts per form: a form with
// more is refused, 413), or at this without it; its bytes are capped by the panel's
// `data-batch-bytes`.
const BATCH_FILES = 100;
const STORE_PREFIX = 'stowage.resumable ';
// Below this an append is not worth its request; a 413 at this size is final.
const MIN_APPEND_BYTES = 64 * 1024;
// Waits after failures in a row (ms); the last one repeats until the upload goes
// through, is paused or is cancelled. Coming back online retries at once.
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 15000, 30000];
// A PATCH whose body makes no progress for this long is treated as a lost connection
// (a dead Wi-Fi can leave a socket open for minutes without an error).
const STALL_MS = 30000;
// Answers worth trying again later, as after a network error.
const TRANSIENT = new Set([408, 423, 429, 500, 502, 503, 504]);
// JSON and headers of a multipart form around one file, besides its name.
const FORM_OVERHEAD = 512;
// Small files go together, up to TOGETHER_FILES a request and SMALL_AT_ONCE requests
// at a time: for them a request's round trip, not the bandwidth, is the cost (`python
// -m bench drop`: a request each, one at a time, 1,000 files of 1-4 KiB went at 94
// files/s). Anything larger goes alone, at the connection's full speed.
const SMALL_BYTES = 256 * 1024;
const SMALL_AT_ONCE = 2;
const TOGETHER_FILES = 32;

// Whether a failure may go through if tried again: the one place that decides which
// failed rows offer Retry. A lost connection (0) and a busy or timed-out server may;
// a refusal about the file itself (too large, over the quota, a bad name, a link that
// is gone, a name taken) never will, unless the server says when to come back
// (Retry-After).
function mayRetry(status, retryAfter) {
  if (status === undefined || status === 0 || TRANSIENT.has(status)) return true;
  return Boolean(retryAfter);
}

function humanBytes(count) {
  let size = count;
  for (const unit of ['bytes', 'KiB', 'MiB', 'GiB']) {
    if (size < 1024 || unit === 'GiB') {
      return unit === 'bytes' ? `${count} bytes` : `${size.toFixed(1).replace(/\.0$/, '')} ${unit}`;
    }
    size /= 1024;
  }
  return `${count} bytes`;
}

// A file's path inside a dropped or chosen folder ("photos/2024/a.jpg"), or "": set
// by the drop's traversal (`stowagePath`), or by the browser for a directory picker.
function relativePathOf(file) {
  return file.stowagePath || file.webkitRelativePath || '';
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// A refusal in words: the server's JSON `{"error": ...}`, else its text, else the status.
async function reason(response) {
  let text = '';
  try {
    text = (await response.text()).trim();
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'string') text = parsed.error;
  } catch {
    // Not JSON: the text as it came.
  }
  return text ? `${text.slice(0, 300)} (HTTP ${response.status})` : `HTTP ${response.status}`;
}

class Stop extends Error {}
class Refused extends Error {
  constructor(message, status, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}
class Transient extends Error {}

// What this browser remembers about unfinished uploads, per account.
class Memory {
  constructor(account) {
    this.prefix = `${STORE_PREFIX}${account} `;
  }

  key(file) {
    // A file of a dropped folder is known by its path in it, not its name alone.
    return `${this.prefix}${file.size} ${file.lastModified} ${relativePathOf(file) || file.name}`;
  }

  // `kind`: 'tus' (an upload resource on the node) or 'direct' (a direct session).
  get(file, kind = 'tus') {
    try {
      const found = JSON.parse(localStorage.getItem(this.key(file)) || 'null');
      return found && typeof found.url === 'string' && (found.kind || 'tus') === kind ? found.url : null;
    } catch {
      return null;
    }
  }

  put(file, url, kind = 'tus') {
    try {
      localStorage.setItem(
        this.key(file),
        JSON.stringify({ url, kind, name: file.name, size: file.size, at: Date.now() }),
      );
    } catch {
      // Storage full or disabled: the upload still works, it just cannot resume later.
    }
  }

  forget(key) {
    try {
      localStorage.removeItem(key);
    } catch {
      // Nothing to forget.
    }
  }

  // [key, {url, name, size}] of every unfinished upload of this account.
  unfinished() {
    const found = [];
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(this.prefix)) continue;
        const entry = JSON.parse(localStorage.getItem(key) || 'null');
        if (entry && typeof entry.url === 'string') found.push([key, entry]);
      }
    } catch {
      // Unreadable storage: nothing to offer.
    }
    return found.sort((a, b) => (a[1].at || 0) - (b[1].at || 0));
  }
}

// A row's words, bar and buttons for `transfer` (an Upload, a Single or a Refusal):
// its `state`, `sent` bytes and `file`. `pausable`: Pause and Resume apply (a
// resumable upload). Retry shows only where the failure may go through
// (`mayRetry`); a finished, refused or failed row offers Dismiss.
function drawRow(transfer, note, pausable) {
  const { li, parts } = transfer.row;
  const { bar, meta, pause, cancel } = parts;
  const { file, state } = transfer;
  const size = file.size;
  const sent = Math.min(transfer.sent, size);
  const percent = size ? Math.floor((sent * 100) / size) : 100;
  bar.max = Math.max(1, size);
  bar.value = size ? sent : state === 'done' ? 1 : 0;
  bar.textContent = `${percent}%`;
  bar.hidden = state === 'refused';
  bar.setAttribute('aria-label', `${state === 'done' ? 'Uploaded' : 'Uploading'} ${file.name}`);
  const amount = `${humanBytes(sent)} of ${humanBytes(size)} (${percent}%)`;
  const rate = transfer.rate && transfer.rate.value;
  const words = {
    queued: `Waiting to start · ${amount}`,
    sending: transfer.checking
      ? `Sent ${humanBytes(size)}; checking what the bucket received`
      : `${amount}${rate ? ` · ${humanBytes(Math.round(rate))}/s` : ''}`,
    paused: `Paused at ${amount}`,
    retrying: `Connection lost at ${amount}; ${note || 'retrying'}`,
    done: `Stored · ${humanBytes(size)}`,
    failed: `Not stored: ${note}`,
    refused: `Not sent: ${note}`,
  };
  if (note !== undefined || state !== 'failed') meta.textContent = words[state] || amount;
  li.dataset.state = state;
  const over = state === 'done' || state === 'failed' || state === 'refused';
  cancel.textContent = over ? 'Dismiss' : 'Cancel';
  if (state === 'failed') {
    pause.hidden = !transfer.canRetry;
    pause.textContent = 'Retry';
  } else {
    pause.hidden = over || !pausable;
    pause.textContent = state === 'paused' ? 'Resume' : 'Pause';
  }
  pause.setAttribute('aria-label', `${pause.textContent} ${file.name}`);
  cancel.setAttribute('aria-label', `${cancel.textContent} ${file.name}`);
}

// A file small enough for one request: a multipart form of it alone, through
// XMLHttpRequest for its upload progress. Nothing to resume: a failure the server
// may get past offers Retry, which sends it again whole.
class Single {
  constructor(panel, file) {
    this.panel = panel;
    this.file = file;
    this.key = panel.memory.key(file);
    this.sent = 0;
    this.state = 'queued';
    this.canRetry = false;
    this.xhr = null;
    this.rate = { at: 0, bytes: 0, value: 0 };
    this.row = panel.rowFor(this.key, file.name);
    this.draw();
  }

  draw(note) {
    drawRow(this, note, false);
  }

  measure() {
    Upload.prototype.measure.call(this);
  }

  pauseOrResume() {
    if (this.state !== 'failed' || !this.canRetry) return;
    this.state = 'queued'; // Retry
    this.sent = 0;
    this.draw();
    this.panel.pump();
  }

  cancel() {
    this.state = 'cancelled';
    if (this.xhr) this.xhr.abort();
    this.panel.forget(this);
    this.panel.pump();
  }

  run() {
    this.state = 'sending';
    this.sent = 0;
    this.rate = { at: 0, bytes: 0, value: 0 };
    this.draw();
    return new Promise((resolve) => {
      const form = new FormData();
      form.append('file', this.file, relativePathOf(this.file) || this.file.name);
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('POST', this.panel.url);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.onprogress = (event) => {
        if (!event.lengthComputable || !event.total) return;
        this.sent = Math.floor((this.file.size * event.loaded) / event.total);
        this.measure();
        this.draw();
      };
      const settle = (then) => {
        this.xhr = null;
        if (this.state === 'sending') then();
        resolve();
      };
      xhr.onload = () =>
        settle(() => {
          if (xhr.status === 201 || xhr.status === 200) {
            this.stored(xhr.getResponseHeader('Location'));
            this.panel.stored();
            return;
          }
          this.fail(refusalOf(xhr), xhr.status, xhr.getResponseHeader('Retry-After'));
        });
      xhr.onerror = () =>
        settle(() =>
          this.fail('the upload did not reach the server (the connection failed or was closed).', 0),
        );
      xhr.onabort = () => settle(() => {});
      xhr.send(form);
    });
  }

  stored(location) {
    this.state = 'done';
    this.sent = this.file.size;
    this.draw();
    if (location && this.panel.links) {
      const link = document.createElement('a');
      link.href = location;
      link.target = '_blank';
      link.textContent = this.file.name;
      this.row.parts.name.replaceChildren(link);
    }
  }

  fail(message, status, retryAfter) {
    this.state = 'failed';
    this.canRetry = mayRetry(status, retryAfter);
    this.draw(message);
  }
}

// What a refused upload's answer says, in words: its JSON `error`, else its text.
function refusalOf(xhr) {
  let message = (xhr.responseText || '').trim();
  try {
    const parsed = JSON.parse(message);
    if (parsed && typeof parsed.error === 'string') message = parsed.error;
  } catch {
    // Plain text (Stario's own 413, a proxy's page).
  }
  if (xhr.status === 401) return 'you are signed out; reload the page and sign in again.';
  return message ? `${message.slice(0, 300)} (HTTP ${xhr.status})` : `HTTP ${xhr.status}`;
}

// Several small files of the queue in one multipart request: a request each would
// cost each its round trip (`python -m bench drop`). Each keeps its own row and bar,
// which follow where its part lies in the body; a refusal is every one's.
function sendTogether(panel, singles) {
  return new Promise((resolve) => {
    const form = new FormData();
    for (const single of singles) {
      single.state = 'sending';
      single.sent = 0;
      single.rate = { at: 0, bytes: 0, value: 0 };
      single.draw();
      form.append('file', single.file, relativePathOf(single.file) || single.file.name);
    }
    const xhr = new XMLHttpRequest();
    for (const single of singles) single.xhr = xhr;
    xhr.open('POST', panel.url);
    xhr.setRequestHeader('Accept', 'application/json');
    const total = singles.reduce((n, single) => n + single.file.size, 0);
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable || !event.total) return;
      let left = Math.floor((total * event.loaded) / event.total);
      for (const single of singles) {
        single.sent = Math.min(single.file.size, Math.max(0, left));
        left -= single.file.size;
        single.measure();
        single.draw();
      }
    };
    const settle = (each) => {
      for (const single of singles) {
        single.xhr = null;
        if (single.state === 'sending') each(single);
      }
      resolve();
    };
    xhr.onload = () => {
      if (xhr.status === 201 || xhr.status === 200) {
        let stored = [];
        try {
          stored = JSON.parse(xhr.responseText).files || [];
        } catch {
          // Stored all the same: the status says so.
        }
        settle((single) => single.stored(stored[singles.indexOf(single)]?.url));
        panel.stored();
        return;
      }
      const message = refusalOf(xhr);
      const retryAfter = xhr.getResponseHeader('Retry-After');
      settle((single) => single.fail(message, xhr.status, retryAfter));
    };
    xhr.onerror = () =>
      settle((single) =>
        single.fail('the upload did not reach the server (the connection failed or was closed).', 0),
      );
    // One of them was cancelled: the others go again.
    xhr.onabort = () =>
      settle((single) => {
        single.state = 'queued';
        single.sent = 0;
        single.draw();
      });
    xhr.send(form);
  });
}

// A file the page refused before sending anything: over the limit, the quota left,
// or past what a file request still takes. Its row says why, and offers Dismiss.
class Refusal {
  constructor(panel, file, why) {
    this.panel = panel;
    this.file = file;
    this.key = `refused ${Math.random().toString(36).slice(2)}`;
    this.sent = 0;
    this.state = 'refused';
    this.row = panel.rowFor(this.key, file.name);
    drawRow(this, why, false);
  }

  pauseOrResume() {}

  cancel() {
    this.panel.forget(this);
  }
}

class Upload {
  constructor(panel, file) {
    this.panel = panel;
    this.file = file;
    this.key = panel.memory.key(file);
    this.url = panel.memory.get(file);
    this.offset = null; // the server's offset, once known
    this.sent = 0; // what the bar shows: offset plus the current append's progress
    this.state = 'queued';
    this.failures = 0;
    this.appendBytes = panel.appendBytes;
    this.xhr = null;
    this.controller = null;
    this.wake = null;
    this.rate = { at: 0, bytes: 0, value: 0 };
    this.row = panel.rowFor(this.key, file.name);
    this.draw();
  }

  // ---- the row -------------------------------------------------------------

  draw(note) {
    drawRow(this, note, true);
  }

  measure() {
    const now = performance.now();
    if (!this.rate.at) {
      this.rate = { at: now, bytes: this.sent, value: 0 };
    } else if (now - this.rate.at >= 1000) {
      const value = ((this.sent - this.rate.bytes) * 1000) / (now - this.rate.at);
      this.rate = { at: now, bytes: this.sent, value: Math.max(0, value) };
    }
  }

  // ---- the buttons ---------------------------------------------------------

  pauseOrResume() {
    if (this.state === 'paused') {
      this.state = 'queued';
      this.draw();
      this.panel.pump();
    } else if (this.state === 'failed') {
      if (!this.canRetry) return;
      this.state = 'queued'; // Retry
      this.draw();
      this.panel.pump();
    } else if (this.state !== 'done') {
      this.state = 'paused';
      this.interrupt();
      this.draw();
      this.panel.pump();
    }
  }

  async cancel() {
    const { url } = this;
    if (this.state === 'done') {
      this.panel.forget(this); // Dismiss: its file is stored, the row only goes
      return;
    }
    this.state = 'cancelled';
    this.interrupt();
    this.panel.forget(this);
    if (url) await this.panel.terminate(url);
    this.panel.pump();
  }

  // Ends whatever request or wait is in progress; the loop then sees the new state.
  interrupt() {
    if (this.xhr) this.xhr.abort();
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
  }

  // ---- the protocol --------------------------------------------------------

  async run() {
    this.state = 'sending';
    this.rate = { at: 0, bytes: 0, value: 0 };
    // After a pause or a failure part of an append may have landed: ask first.
    if (this.url) this.offset = null;
    this.draw();
    while (this.state === 'sending' || this.state === 'retrying') {
      try {
        if (this.url && this.offset === null) await this.locate();
        if (!this.url) await this.create();
        if (this.offset >= this.file.size) {
          this.finish(null);
          return;
        }
        await this.append();
        this.failures = 0;
      } catch (error) {
        if (this.state !== 'sending' && this.state !== 'retrying') return; // paused, cancelled
        if (error instanceof Transient) {
          await this.backOff();
        } else {
          if (error instanceof Refused) this.fail(error.message, error.status, error.retryAfter);
          else this.fail(String(error));
          return;
        }
      }
    }
  }

  headers(extra) {
    return { 'Tus-Resumable': TUS_VERSION, ...extra };
  }

  async request(method, url, headers) {
    this.controller = new AbortController();
    try {
      return await fetch(url, {
        method,
        headers: this.headers(headers),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: this.controller.signal,
      });
    } catch (error) {
      if (this.controller.signal.aborted) throw new Stop();
      throw new Transient(String(error));
    } finally {
      this.controller = null;
    }
  }

  refusal(status, message, retryAfter = null) {
    if (status === 401) return new Refused('you are signed out; reload the page and sign in again.', 401);
    if (TRANSIENT.has(status)) return new Transient(message);
    return new Refused(message, status, retryAfter);
  }

  // HEAD: how much of the remembered upload the server has. Unknown or expired
  // (404/410), or for another file: start a new one.
  async locate() {
    const response = await this.request('HEAD', this.url, {});
    if (response.status === 200 || response.status === 204) {
      const offset = Number(response.headers.get('Upload-Offset') ?? NaN);
      const length = response.headers.get('Upload-Length');
      if (Number.isSafeInteger(offset) && offset >= 0 && (length === null || Number(length) === this.file.size)) {
        this.offset = Math.min(offset, this.file.size);
        this.sent = this.offset;
        this.draw();
        return;
      }
    } else if (response.status !== 404 && response.status !== 410 && response.status !== 403) {
      throw this.refusal(response.status, `HTTP ${response.status} while asking the server how much it has`);
    }
    this.panel.memory.forget(this.key);
    this.url = null;
    this.offset = null;
  }

  async create() {
    const metadata = [`filename ${base64(this.file.name)}`];
    if (this.file.type) metadata.push(`filetype ${base64(this.file.type)}`);
    // Where it goes: the folder the page shows, and the file's path under it.
    if (this.panel.folder) metadata.push(`folder ${base64(this.panel.folder)}`);
    const path = relativePathOf(this.file);
    if (path) metadata.push(`relativePath ${base64(path)}`);
    const response = await this.request('POST', this.panel.endpoint, {
      'Upload-Length': String(this.file.size),
      'Upload-Metadata': metadata.join(','),
    });
    if (response.status !== 201) {
      const retryAfter = response.headers.get('Retry-After');
      throw this.refusal(response.status, await reason(response), retryAfter);
    }
    const location = response.headers.get('Location');
    if (!location) throw new Refused('the server gave no upload URL', 201);
    this.url = new URL(location, new URL(this.panel.endpoint, window.location.href)).href;
    this.offset = 0;
    this.sent = 0;
    this.panel.memory.put(this.file, this.url);
    this.draw();
  }

  // One PATCH of at most `appendBytes`, through XMLHttpRequest for its upload progress.
  append() {
    const start = this.offset;
    const end = Math.min(this.file.size, start + this.appendBytes);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      let stalled = null;
      const watch = () => {
        clearTimeout(stalled);
        stalled = setTimeout(() => {
          settle(() => reject(new Transient('no progress')));
          xhr.abort();
        }, STALL_MS);
      };
      let settled = false;
      const settle = (then) => {
        if (settled) return;
        settled = true;
        clearTimeout(stalled);
        this.xhr = null;
        then();
      };
      xhr.open('PATCH', this.url);
      xhr.setRequestHeader('Tus-Resumable', TUS_VERSION);
      xhr.setRequestHeader('Upload-Offset', String(start));
      xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
      xhr.upload.onprogress = (event) => {
        this.sent = start + event.loaded;
        this.measure();
        this.draw();
        // Once the body is out, the server fsyncs before it answers: give it time.
        if (event.loaded < end - start) watch();
        else clearTimeout(stalled);
      };
      xhr.onerror = () => settle(() => reject(new Transient('network error')));
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => settle(() => reject(new Stop()));
      xhr.onload = () =>
        settle(() => {
          try {
            resolve(this.appended(xhr, start));
          } catch (error) {
            reject(error);
          }
        });
      xhr.send(this.file.slice(start, end));
      watch();
    });
  }

  appended(xhr, start) {
    const status = xhr.status;
    if (status === 204 || status === 200) {
      const offset = Number(xhr.getResponseHeader('Upload-Offset') ?? NaN);
      if (!Number.isSafeInteger(offset) || offset < start) {
        throw new Transient('the server answered an append without a usable offset');
      }
      this.offset = Math.min(offset, this.file.size);
      this.sent = this.offset;
      this.draw();
      if (this.offset >= this.file.size) this.finish(xhr.getResponseHeader('Stowage-File-Location'));
      return;
    }
    if (status === 409) {
      // The server has another offset than we thought (part of an earlier append
      // landed after all, or another tab sends the same file): ask it, after a wait
      // that grows if it keeps happening.
      throw new Transient('offset conflict');
    }
    if (status === 413 && this.appendBytes > MIN_APPEND_BYTES) {
      // Something on the way (a proxy's request cap) refused the append's size.
      this.appendBytes = Math.max(MIN_APPEND_BYTES, Math.floor(this.appendBytes / 2));
      this.panel.appendBytes = Math.min(this.panel.appendBytes, this.appendBytes); // for the next
      this.offset = null;
      return;
    }
    if (status === 404 || status === 410) {
      // Expired or removed on the server: start it afresh.
      this.panel.memory.forget(this.key);
      this.url = null;
      this.offset = null;
      this.sent = 0;
      return;
    }
    const text = (xhr.responseText || '').trim();
    let message = text;
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed.error === 'string') message = parsed.error;
    } catch {
      // Plain text.
    }
    throw this.refusal(
      status,
      message ? `${message.slice(0, 300)} (HTTP ${status})` : `HTTP ${status}`,
      xhr.getResponseHeader('Retry-After'),
    );
  }

  // Waits before the next try; coming back online, Resume or Cancel end the wait early.
  async backOff() {
    const delay = RETRY_DELAYS[Math.min(this.failures, RETRY_DELAYS.length - 1)];
    this.failures += 1;
    this.state = 'retrying';
    this.offset = null; // whatever happened, ask the server before sending again
    this.draw(`retrying in ${Math.ceil(delay / 1000)} s`);
    await new Promise((resolve) => {
      const timer = setTimeout(done, delay);
      function done() {
        clearTimeout(timer);
        window.removeEventListener('online', done);
        resolve();
      }
      window.addEventListener('online', done);
      this.wake = done;
    });
    this.wake = null;
    if (this.state === 'retrying') {
      this.state = 'sending';
      this.draw(`retrying`);
    }
  }

  finish(fileLocation) {
    this.state = 'done';
    this.sent = this.file.size;
    this.panel.memory.forget(this.key);
    this.draw();
    if (fileLocation && this.panel.links) {
      const link = document.createElement('a');
      link.href = fileLocation;
      link.target = '_blank';
      link.textContent = this.file.name;
      this.row.parts.name.replaceChildren(link);
    }
    this.panel.finished(this);
    this.panel.stored();
  }

  fail(message, status, retryAfter) {
    this.state = 'failed';
    this.canRetry = mayRetry(status, retryAfter);
    this.draw(message);
    this.panel.finished(this);
  }
}

// Direct uploads (docs/direct-transfers.md): on S3 storage the node opens a session
// (one multipart upload at the file's key) and hands back a URL for each part, signed
// for that part's exact length; the parts go straight to the bucket, PARTS_AT_ONCE
// at a time, and the node completes the upload and checks what arrived. The session's
// URL is remembered like a tus upload's, so picking the same file after a reload asks
// the session which parts the bucket holds and sends only the others.
const PARTS_AT_ONCE = 4;
// Files of one part that go at once (each its own session), as small files do.
const ONE_PART_AT_ONCE = 4;
// The node's part size below 80 GB: a file of one part has its SHA-256 computed here
// and signed into its URL, so the bucket checks it and the node reads nothing back.
const DIRECT_PART_BYTES = 8 * 1024 * 1024;
// Tries of one part before the whole upload backs off (as after a lost connection)
// and asks the session afresh; waits between them (ms).
const PART_RETRY_DELAYS = [500, 1500, 4000];
// Part URLs live 15 minutes: older than this, ask for fresh ones before sending.
const URL_FRESH_MS = 10 * 60 * 1000;
// Completion refused for parts the bucket lacks, or a session gone: tries before the
// row says so.
const MAX_RESTARTS = 3;

// The direct session endpoint has gone (the node turned direct uploads off): tus.
class Fallback extends Error {}

// What the bucket said, from its XML error (`<Message>`), else the status.
function bucketReason(xhr) {
  const text = (xhr.responseText || '').trim();
  const found = /<Message>([^<]*)<\/Message>/.exec(text);
  const words = found ? found[1] : '';
  return words ? `the bucket refused a part: ${words.slice(0, 200)} (HTTP ${xhr.status})` : `the bucket refused a part (HTTP ${xhr.status})`;
}

class DirectUpload {
  constructor(panel, file) {
    this.panel = panel;
    this.file = file;
    this.key = panel.memory.key(file);
    this.url = panel.memory.get(file, 'direct'); // the session's URL, once known
    this.session = null; // the session as last answered
    this.plan = new Map(); // part number -> {number, size, url, headers, at}
    this.etags = new Map(); // part number -> ETag (null: held, ETag not readable)
    this.todo = []; // part numbers to send, in order
    this.more = false; // the session has parts past those listed
    this.loaded = new Map(); // part number -> bytes of it sent so far
    this.busy = new Set(); // part numbers a lane is sending
    this.sent = 0;
    this.state = 'queued';
    this.failures = 0;
    this.restarts = 0;
    this.checking = false;
    this.broken = null;
    this.xhrs = new Set();
    this.controller = null;
    this.wake = null;
    this.listing = null;
    this.rate = { at: 0, bytes: 0, value: 0 };
    this.row = panel.rowFor(this.key, file.name);
    this.draw();
  }

  draw(note) {
    drawRow(this, note, true);
  }

  measure() {
    Upload.prototype.measure.call(this);
  }

  pauseOrResume() {
    Upload.prototype.pauseOrResume.call(this);
  }

  async cancel() {
    const { url } = this;
    if (this.state === 'done') {
      this.panel.forget(this);
      return;
    }
    this.state = 'cancelled';
    this.interrupt();
    this.panel.forget(this);
    if (url) await this.panel.terminate(url);
    this.panel.pump();
  }

  interrupt() {
    for (const xhr of [...this.xhrs]) xhr.abort();
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
  }

  backOff() {
    return Upload.prototype.backOff.call(this);
  }

  refusal(status, message, retryAfter = null) {
    return Upload.prototype.refusal.call(this, status, message, retryAfter);
  }

  fail(message, status, retryAfter) {
    Upload.prototype.fail.call(this, message, status, retryAfter);
  }

  running() {
    return this.state === 'sending' || this.state === 'retrying';
  }

  // ---- the protocol --------------------------------------------------------

  async run() {
    this.state = 'sending';
    this.rate = { at: 0, bytes: 0, value: 0 };
    this.session = null; // after a pause or a failure, ask what the bucket holds
    this.draw();
    while (this.running()) {
      try {
        if (!this.session && this.url) await this.locate();
        if (this.state === 'done') return; // it had been completed
        if (!this.session) await this.open();
        if (this.state === 'done') return; // an empty file: nothing to send
        await this.sendParts();
        await this.complete();
        return;
      } catch (error) {
        if (error instanceof Fallback) return this.panel.insteadOfDirect(this).run();
        if (!this.running()) return; // paused, cancelled
        if (error instanceof Transient || error instanceof Stop) {
          this.session = null;
          await this.backOff();
        } else if (error instanceof Refused) {
          this.fail(error.message, error.status, error.retryAfter);
          return;
        } else {
          this.fail(String(error));
          return;
        }
      }
    }
  }

  async call(method, url, body) {
    this.controller = new AbortController();
    try {
      return await fetch(url, {
        method,
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: this.controller.signal,
      });
    } catch (error) {
      if (this.controller.signal.aborted) throw new Stop();
      throw new Transient(String(error));
    } finally {
      this.controller = null;
    }
  }

  // A refusal of the node's, or the fallback to tus when direct uploads are off.
  async refused(response) {
    const text = await response.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON.
    }
    if (response.status === 409 && parsed && typeof parsed.use === 'string') throw new Fallback();
    const words = parsed && typeof parsed.error === 'string' ? parsed.error : text.trim();
    const message = words ? `${words.slice(0, 300)} (HTTP ${response.status})` : `HTTP ${response.status}`;
    throw this.refusal(response.status, message, response.headers.get('Retry-After'));
  }

  // The session a new one, or this browser's from before: what the bucket holds, what
  // it still needs (with fresh URLs).
  adopt(session) {
    this.session = session;
    this.partSize = session.part_size;
    this.count = this.file.size ? Math.ceil(this.file.size / this.partSize) : 0;
    this.etags = new Map((session.held || []).map((part) => [part.number, part.etag || null]));
    this.plan = new Map();
    this.todo = [];
    this.learn(session);
    this.loaded = new Map();
    this.progress();
  }

  // Parts and URLs of a session's answer (the first or a later page of them).
  learn(session) {
    const at = Date.now();
    for (const part of session.parts || []) {
      if (this.etags.has(part.number)) continue;
      if (!this.plan.has(part.number) && !this.busy.has(part.number)) this.todo.push(part.number);
      this.plan.set(part.number, { ...part, at });
    }
    const last = Math.max(0, ...(session.parts || []).map((part) => part.number));
    this.next = Math.max(this.next || 1, last + 1);
    this.more = Boolean(session.more);
    this.session.expires_at = session.expires_at;
  }

  progress() {
    let bytes = 0;
    for (const number of this.etags.keys()) bytes += this.partBytes(number);
    for (const loaded of this.loaded.values()) bytes += loaded;
    this.sent = Math.min(bytes, this.file.size);
    this.measure();
    this.draw();
  }

  partBytes(number) {
    const start = (number - 1) * this.partSize;
    return Math.max(0, Math.min(this.partSize, this.file.size - start));
  }

  async locate() {
    const response = await this.call('GET', this.url);
    if (response.status === 200) {
      const { session } = await response.json();
      if (session && session.size === this.file.size) {
        this.next = 0;
        this.adopt(session);
        return;
      }
    } else if (response.status === 409 && !(await response.clone().text()).includes('"use"')) {
      // Completed already (the page went before the answer came): its file.
      await this.completeWith([{ number: 1, etag: 'completed' }]);
      return;
    } else if (response.status !== 404 && response.status !== 410 && response.status !== 403) {
      await this.refused(response);
    }
    // Unknown, expired or for another file: start afresh.
    this.panel.memory.forget(this.key);
    this.url = null;
    this.session = null;
  }

  async open() {
    const body = { name: this.file.name, size: this.file.size };
    if (this.panel.folder) body.folder = this.panel.folder;
    if (this.file.type) body.content_type = this.file.type;
    const path = relativePathOf(this.file);
    if (path) body.relative_path = path;
    // One part: its digest goes in its URL, and the bucket checks it. (A page served
    // over plain HTTP to another machine has no crypto.subtle: the node reads back.)
    if (this.file.size <= DIRECT_PART_BYTES && globalThis.crypto?.subtle) {
      body.sha256 = await sha256Hex(this.file);
    }
    const response = await this.call('POST', this.panel.direct, body);
    if (response.status !== 201) await this.refused(response);
    const answer = await response.json();
    if (answer.file) {
      this.finish(answer.file); // nothing to send (an empty file)
      return;
    }
    const { session } = answer;
    this.url = session.url || `${this.panel.direct}/${encodeURIComponent(session.id)}`;
    this.panel.memory.put(this.file, this.url, 'direct');
    this.next = 0;
    this.adopt(session);
  }

  // More parts (past those listed), or fresh URLs from part `from` on: one request
  // at a time, shared by the lanes that wait for it.
  list(from) {
    if (!this.listing) {
      this.listing = (async () => {
        const response = await this.call('GET', `${this.url}?from=${from}`);
        if (response.status !== 200) await this.refused(response);
        const { session } = await response.json();
        for (const part of session.held || []) {
          if (!this.etags.has(part.number)) this.etags.set(part.number, part.etag || null);
        }
        this.learn(session);
      })().finally(() => {
        this.listing = null;
      });
    }
    return this.listing;
  }

  async sendParts() {
    this.broken = null;
    const lane = async () => {
      while (this.running() && !this.broken) {
        const number = this.todo.shift();
        if (number === undefined) {
          if (!this.more) return;
          await this.list(this.next);
          continue;
        }
        if (this.etags.has(number) || this.busy.has(number)) continue;
        this.busy.add(number);
        try {
          await this.sendPart(number);
        } finally {
          this.busy.delete(number);
        }
      }
    };
    const lanes = Array.from({ length: PARTS_AT_ONCE }, () =>
      lane().catch((error) => {
        // One lane's failure stops the others: the upload backs off as a whole.
        if (!this.broken) this.broken = error;
        for (const xhr of [...this.xhrs]) xhr.abort();
      }),
    );
    await Promise.all(lanes);
    if (this.broken) throw this.broken;
    if (!this.running()) throw new Stop();
  }

  async sendPart(number) {
    let expired = 0;
    for (let attempt = 0; ; ) {
      let part = this.plan.get(number);
      if (!part || Date.now() - part.at > URL_FRESH_MS) {
        await this.list(number);
        if (this.etags.has(number)) return; // the bucket had it after all
        part = this.plan.get(number);
        if (!part) throw new Transient(`the session listed no URL for part ${number}`);
      }
      const answer = await this.put(part);
      if (answer.status === 200) {
        this.etags.set(number, answer.etag);
        this.loaded.delete(number);
        this.progress();
        return;
      }
      this.loaded.delete(number);
      this.progress();
      if (answer.status === 403 && expired < 2) {
        // Most likely the URL expired (a long wait, a sleeping laptop): fresh ones.
        expired += 1;
        this.plan.delete(number);
        continue;
      }
      if (answer.status === 0 || TRANSIENT.has(answer.status)) {
        if (attempt >= PART_RETRY_DELAYS.length) throw new Transient(`part ${number} did not get through`);
        await new Promise((resolve) => setTimeout(resolve, PART_RETRY_DELAYS[attempt]));
        attempt += 1;
        if (!this.running() || this.broken) throw new Stop();
        continue;
      }
      throw new Refused(bucketReason(answer.xhr), answer.status);
    }
  }

  // One PUT straight to the bucket, through XMLHttpRequest for its progress.
  put(part) {
    const start = (part.number - 1) * this.partSize;
    const body = this.file.slice(start, start + part.size);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhrs.add(xhr);
      let stalled = null;
      let settled = false;
      const settle = (then) => {
        if (settled) return;
        settled = true;
        clearTimeout(stalled);
        this.xhrs.delete(xhr);
        then();
      };
      const watch = () => {
        clearTimeout(stalled);
        stalled = setTimeout(() => {
          settle(() => resolve({ status: 0, xhr }));
          xhr.abort();
        }, STALL_MS);
      };
      xhr.open('PUT', part.url);
      for (const [name, value] of Object.entries(part.headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        this.loaded.set(part.number, Math.min(event.loaded, part.size));
        this.progress();
        if (event.loaded < part.size) watch();
        else clearTimeout(stalled);
      };
      xhr.onerror = () => settle(() => resolve({ status: 0, xhr }));
      xhr.ontimeout = xhr.onerror;
      xhr.onabort = () => settle(() => reject(new Stop()));
      // The ETag of a part stored only: a refusal need not expose it (Chromium logs
      // reading a header the answer did not expose as an error).
      xhr.onload = () =>
        settle(() => resolve({ status: xhr.status, etag: xhr.status === 200 ? xhr.getResponseHeader('ETag') : null, xhr }));
      xhr.send(body);
      watch();
    });
  }

  async complete() {
    // A part whose ETag the browser could not read (a bucket that does not expose
    // it): the session lists what the bucket holds, with its ETags.
    if ([...this.etags.values()].some((etag) => !etag)) await this.list(this.count + 1);
    const parts = [];
    for (let number = 1; number <= this.count; number++) {
      const etag = this.etags.get(number);
      if (!etag) throw new Transient(`part ${number} is not in the bucket`);
      parts.push({ number, etag });
    }
    await this.completeWith(parts);
  }

  // POST .../complete. A session completed already (its answer was lost, or another
  // tab finished it) answers its file again, whatever the list says.
  async completeWith(parts) {
    this.checking = true;
    this.draw();
    let response;
    try {
      response = await this.call('POST', `${this.url}/complete`, { parts });
    } finally {
      this.checking = false;
    }
    const { status } = response;
    if (status === 201 || status === 200) {
      const answer = await response.json();
      this.finish((answer.files && answer.files[0]) || answer.file || null);
      return;
    }
    if (status === 401 || TRANSIENT.has(status)) await this.refused(response);
    if (status === 409) {
      // Direct uploads went off (`use`: refused() turns to tus), or another request
      // is completing it: ask again in a moment.
      const copy = response.clone();
      let parsed = null;
      try {
        parsed = await copy.json();
      } catch {
        // Not JSON.
      }
      if (!parsed || typeof parsed.use !== 'string') throw new Transient('being completed');
      await this.refused(response);
    }
    if (this.restarts >= MAX_RESTARTS || (status !== 400 && status !== 404 && status !== 410)) {
      await this.refused(response);
    }
    this.restarts += 1;
    if (status === 404 || status === 410) {
      // The session is gone (expired): the file goes again from the start.
      this.panel.memory.forget(this.key);
      this.url = null;
      throw new Transient('the upload session is gone');
    }
    // Parts missing or not as sent (e.g. a part sent again from another tab): ask
    // the session what the bucket holds, and send the rest.
    throw new Transient('the bucket lacks parts');
  }

  finish(file) {
    this.state = 'done';
    this.sent = this.file.size;
    this.panel.memory.forget(this.key);
    this.draw();
    if (file && file.url && this.panel.links) {
      const link = document.createElement('a');
      link.href = file.url;
      link.target = '_blank';
      link.textContent = this.file.name;
      this.row.parts.name.replaceChildren(link);
    }
    this.panel.finished(this);
    this.panel.stored();
  }
}

class Panel {
  constructor(root) {
    this.root = root;
    this.list = root.querySelector('.resumable-list');
    this.endpoint = root.dataset.tusEndpoint;
    // Set only on S3 storage with direct uploads on: where sessions are opened.
    this.direct = root.dataset.directUploads || '';
    this.appendBytes = Math.max(MIN_APPEND_BYTES, Number(root.dataset.appendBytes) || 64 * 1024 * 1024);
    this.memory = new Memory(root.dataset.account || '');
    this.links = root.dataset.links !== 'false';
    this.folder = root.dataset.folder || '';
    // Where a small file goes in one request (the upload form's action), and the
    // largest request body for it: a file whose form would be larger goes resumably.
    this.url = root.dataset.url || '';
    this.singleBytes = Number(root.dataset.singleBytes) || 0;
    this.maxFileBytes = Number(root.dataset.maxFileBytes) || Infinity;
    // A file request's page: its `#limits` says how many files it still takes.
    this.refreshLimits = root.dataset.refreshLimits === 'true';
    this.uploads = new Map(); // key -> Upload, Single or Refusal
    this.active = null; // the one larger upload under way
    this.running = new Set(); // the small ones under way
    for (const [key, entry] of this.memory.unfinished()) this.offerToContinue(key, entry);
  }

  // Bytes the account may still store: the page's usage bar (repainted by its live
  // stream), less what this tab has queued or on its way. Infinity without a quota.
  quotaLeft() {
    const bar = document.getElementById('usage-bar');
    if (!bar) return Infinity;
    const quota = Number(bar.getAttribute('max'));
    const used = Number(bar.getAttribute('value'));
    if (!Number.isFinite(quota) || !Number.isFinite(used)) return Infinity;
    return Math.max(0, quota - used);
  }

  // Files a file request still takes (its page's `#limits`), Infinity elsewhere.
  filesLeft() {
    const limits = document.querySelector('#limits[data-files-left]');
    if (!limits) return Infinity;
    const left = Number(limits.dataset.filesLeft);
    return Number.isFinite(left) ? Math.max(0, left) : Infinity;
  }

  // The uploads of this tab not stored yet (they count against the quota and the
  // files a request takes before the server has them).
  waiting() {
    return [...this.uploads.values()].filter((u) =>
      ['queued', 'sending', 'retrying', 'paused'].includes(u.state),
    );
  }

  // Why `file` cannot be stored, in words, or null: checked before a byte is sent.
  // The server checks the same again.
  refusalOf(file, roomBytes, roomFiles) {
    const name = file.name;
    if (file.size > this.maxFileBytes) {
      let [size, limit] = [humanBytes(file.size), humanBytes(this.maxFileBytes)];
      // Just over: rounded alike, the difference is only seen in bytes.
      if (size === limit) [size, limit] = [file.size, this.maxFileBytes].map((n) => `${n.toLocaleString('en')} bytes`);
      return `${name} is ${size}; the limit is ${limit} a file.`;
    }
    if (roomFiles <= 0) {
      return `this request takes no more files, so ${name} was not sent.`;
    }
    if (file.size > roomBytes) {
      return `${name} is ${humanBytes(file.size)}; your quota has ${humanBytes(roomBytes)} left.`;
    }
    return null;
  }

  // Whether `file` goes in one request: as the picker reckoned it for file signals.
  fitsSingle(file) {
    return Math.ceil(file.size / 3) * 4 + 6 * file.name.length + FORM_OVERHEAD + 256 <= this.singleBytes;
  }

  // Every file picked or dropped: refused in its row, or queued behind what runs.
  // Rows of earlier files that are over (stored, refused, failed) go: their words
  // no longer apply once the person moves on.
  queue(files) {
    for (const upload of [...this.uploads.values()]) {
      if (['done', 'failed', 'refused'].includes(upload.state)) this.forget(upload);
    }
    const results = document.getElementById('upload-results');
    if (results) results.replaceChildren();
    const waiting = this.waiting();
    let roomBytes = this.quotaLeft() - waiting.reduce((n, u) => n + u.file.size, 0);
    let roomFiles = this.filesLeft() - waiting.length;
    for (const file of files) {
      const key = this.memory.key(file);
      const known = this.uploads.get(key);
      if (known && known.state !== 'done' && known.state !== 'failed') continue; // already on its way
      const why = this.refusalOf(file, roomBytes, roomFiles);
      if (why) {
        const refusal = new Refusal(this, file, why);
        this.uploads.set(refusal.key, refusal);
        continue;
      }
      roomBytes -= file.size;
      roomFiles -= 1;
      const upload =
        this.url && this.fitsSingle(file) && !this.goesDirect(file)
          ? new Single(this, file)
          : this.large(file);
      this.uploads.set(key, upload);
    }
    this.pump();
  }

  add(files) {
    for (const file of files) {
      const key = this.memory.key(file);
      const known = this.uploads.get(key);
      if (known && known.state !== 'done' && known.state !== 'failed') continue; // already on its way
      const upload = this.large(file);
      this.uploads.set(key, upload);
    }
    this.pump();
  }

  // Whether `file` goes straight to the bucket: direct uploads on, larger than what
  // travels together through the node (SMALL_BYTES: for those one request of 32
  // files beats 32 sessions), and not a tus upload this browser already started.
  goesDirect(file) {
    return Boolean(this.direct) && file.size > SMALL_BYTES && !this.memory.get(file, 'tus');
  }

  // A file that does not go in one request: direct, or resumably through the node.
  large(file) {
    return this.goesDirect(file) ? new DirectUpload(this, file) : new Upload(this, file);
  }

  // The node refused a direct session with `use` (direct uploads went off, e.g. a
  // restart found the bucket's CORS rules gone): this file, and the next, by tus.
  insteadOfDirect(direct) {
    this.direct = '';
    const upload = new Upload(this, direct.file);
    this.uploads.set(direct.key, upload);
    if (this.active === direct) this.active = upload;
    return upload;
  }

  // A file was stored: a file request's page takes its counts afresh from the server
  // (the page itself, whose `#limits` says what the request still takes).
  async stored() {
    if (!this.refreshLimits) return;
    const limits = document.getElementById('limits');
    if (!limits) return;
    let response;
    try {
      response = await fetch(window.location.href, {
        headers: { Accept: 'text/html' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      return; // offline: the server still refuses what does not fit
    }
    const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
    const found = fresh.getElementById('limits');
    if (found) {
      limits.textContent = found.textContent;
      limits.dataset.filesLeft = found.dataset.filesLeft ?? '';
      if (found.dataset.filesLeft === undefined) delete limits.dataset.filesLeft;
    } else if (response.status === 410) {
      limits.textContent = 'This request takes no more files.';
      limits.dataset.filesLeft = '0';
    }
  }

  // In the order picked: a larger upload alone, at the connection's full speed; small
  // ones (SMALL_BYTES) together, up to TOGETHER_FILES in one request and
  // SMALL_AT_ONCE requests at a time.
  pump() {
    if (this.active && (this.active.state === 'sending' || this.active.state === 'retrying')) return;
    this.active = null;
    let batch = [];
    let batchBytes = 0;
    const send = () => {
      if (!batch.length) return;
      const sending = batch;
      const done = sending.length === 1 ? sending[0].run() : sendTogether(this, sending);
      this.running.add(sending);
      done.finally(() => {
        this.running.delete(sending);
        this.pump();
      });
      batch = [];
      batchBytes = 0;
    };
    for (const upload of this.uploads.values()) {
      if (upload.state !== 'queued') continue;
      if (upload instanceof DirectUpload && upload.file.size <= DIRECT_PART_BYTES) {
        // One part straight to the bucket: its cost is the round trips (session,
        // PUT, completion), so several go at once, as small files do.
        send();
        if (this.running.size >= ONE_PART_AT_ONCE) return;
        batch = [upload];
        send();
        continue;
      }
      const small = upload instanceof Single && upload.file.size <= SMALL_BYTES;
      if (!small) {
        send();
        if (this.running.size) return; // after the small ones under way
        this.active = upload;
        upload.run().finally(() => {
          if (this.active === upload) this.active = null;
          this.pump();
        });
        return;
      }
      if (this.running.size >= SMALL_AT_ONCE) return;
      const full = batch.length >= TOGETHER_FILES || batchBytes + upload.file.size > this.togetherBytes();
      if (full) {
        send();
        if (this.running.size >= SMALL_AT_ONCE) return;
      }
      batch.push(upload);
      batchBytes += upload.file.size;
    }
    send();
  }

  // The most file bytes one request of small files carries: what one file's form may
  // (`fitsSingle`), less the parts' own overhead.
  togetherBytes() {
    return Math.floor(((this.singleBytes - FORM_OVERHEAD * TOGETHER_FILES) * 3) / 4);
  }

  finished(upload) {
    if (this.active === upload) this.active = null;
  }

  forget(upload) {
    if (upload instanceof Upload || upload instanceof DirectUpload) this.memory.forget(upload.key);
    this.uploads.delete(upload.key);
    const { li } = upload.row;
    // Focus was on the row (its Dismiss): it goes to the next row's, else the picker,
    // not to the top of the page.
    const focused = li.contains(document.activeElement);
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    if (!focused) return;
    const button = next && next.querySelector('button:not([hidden])');
    (button || document.getElementById('picker'))?.focus();
  }

  async terminate(url) {
    try {
      await fetch(url, {
        method: 'DELETE',
        headers: { 'Tus-Resumable': TUS_VERSION },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      // Unreachable: the server drops the upload when it expires.
    }
  }

  // The row for `key`, made if missing: name, bar, words, Pause/Resume and Cancel.
  rowFor(key, name) {
    let li = [...this.list.children].find((item) => item.dataset.key === key);
    if (li) li.replaceChildren();
    else {
      li = document.createElement('li');
      li.className = 'transfer resumable';
      li.dataset.key = key;
      this.list.append(li);
    }
    const id = `resumable-${Math.random().toString(36).slice(2)}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    const nameSpan = document.createElement('strong');
    nameSpan.textContent = name;
    label.append(nameSpan);
    const bar = document.createElement('progress');
    bar.id = id;
    const meta = document.createElement('span');
    meta.className = 'transfer-meta';
    const actions = document.createElement('span');
    actions.className = 'transfer-actions';
    const pause = document.createElement('button');
    pause.type = 'button';
    pause.className = 'button';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'button danger';
    actions.append(pause, cancel);
    li.append(label, bar, meta, actions);
    pause.addEventListener('click', () => this.uploads.get(key)?.pauseOrResume());
    cancel.addEventListener('click', () => this.uploads.get(key)?.cancel());
    return { li, parts: { name: nameSpan, bar, meta, pause, cancel } };
  }

  // An upload this browser left unfinished (reload, closed window): choosing the file
  // again continues it; Discard ends it on the server.
  offerToContinue(key, entry) {
    const { li, parts } = this.rowFor(key, entry.name);
    li.dataset.state = 'unfinished';
    parts.bar.removeAttribute('value');
    parts.bar.max = 1;
    parts.meta.textContent = `Unfinished (${humanBytes(entry.size)}): choose this file again to continue where it stopped.`;
    parts.pause.hidden = true;
    parts.cancel.textContent = 'Discard';
    parts.cancel.setAttribute('aria-label', `Discard ${entry.name}`);
    parts.cancel.addEventListener('click', async () => {
      if (this.uploads.has(key)) return; // picked again since: its own Cancel applies
      this.memory.forget(key);
      li.remove();
      await this.terminate(entry.url);
    });
    this.checkUnfinished(key, entry, li, parts);
  }

  // How much the server has of a remembered upload; one it no longer knows (expired,
  // cancelled elsewhere) is forgotten and its row goes.
  async checkUnfinished(key, entry, li, parts) {
    if (entry.kind === 'direct') return this.checkDirect(key, entry, li, parts);
    let response;
    try {
      response = await fetch(entry.url, {
        method: 'HEAD',
        headers: { 'Tus-Resumable': TUS_VERSION },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      return; // offline: the row stays as it is
    }
    if (this.uploads.has(key) || !li.isConnected) return; // picked again meanwhile
    if (response.status === 404 || response.status === 410) {
      this.memory.forget(key);
      li.remove();
      return;
    }
    const offset = Number(response.headers.get('Upload-Offset') ?? NaN);
    if (!response.ok || !Number.isSafeInteger(offset) || !entry.size) return;
    const percent = Math.floor((Math.min(offset, entry.size) * 100) / entry.size);
    parts.bar.max = entry.size;
    parts.bar.value = Math.min(offset, entry.size);
    parts.meta.textContent =
      `Unfinished: the server has ${humanBytes(offset)} of ${humanBytes(entry.size)} (${percent}%).` +
      ' Choose this file again to continue where it stopped.';
  }

  // A remembered direct session: what the bucket holds of it.
  async checkDirect(key, entry, li, parts) {
    let response;
    try {
      response = await fetch(entry.url, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      return; // offline: the row stays as it is
    }
    if (this.uploads.has(key) || !li.isConnected) return; // picked again meanwhile
    if (response.status === 404 || response.status === 410 || response.status === 403) {
      this.memory.forget(key);
      li.remove();
      return;
    }
    if (!response.ok || !entry.size) return;
    let held = 0;
    try {
      const { session } = await response.json();
      for (const part of session.held || []) held += part.size;
    } catch {
      return;
    }
    const percent = Math.floor((Math.min(held, entry.size) * 100) / entry.size);
    parts.bar.max = entry.size;
    parts.bar.value = Math.min(held, entry.size);
    parts.meta.textContent =
      `Unfinished: the bucket has ${humanBytes(held)} of ${humanBytes(entry.size)} (${percent}%).` +
      ' Choose this file again to continue where it stopped.';
  }
}

// The files under dropped folders (FileSystemEntry trees), each with its path from
// the dropped folder's name down (`stowagePath`), and every folder's path, empty ones
// too ("photos", "photos/2024"). A directory picker (webkitdirectory) gives files
// only: browsers do not report the empty folders of a chosen folder.
async function filesOfEntries(entries) {
  const files = [];
  const folders = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      file.stowagePath = prefix + file.name;
      files.push(file);
    } else if (entry.isDirectory) {
      folders.push(prefix + entry.name);
      const reader = entry.createReader();
      for (;;) {
        // readEntries gives at most 100 at a time: ask until it gives none.
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const entry of entries) await walk(entry, '');
  return { files, folders };
}

// The folders a drop's files sit in ("a/b/c.txt": "a" and "a/b"), with `more`.
function foldersOf(files, more = []) {
  const found = new Set(more);
  for (const file of files) {
    const parts = (relativePathOf(file) || '').split('/').slice(0, -1);
    for (let n = 1; n <= parts.length; n++) found.add(parts.slice(0, n).join('/'));
  }
  return [...found].filter(Boolean).sort();
}

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// Runs `work` over `items`, at most `width` at a time.
async function eachAtOnce(items, width, work) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await work(item);
    }
  });
  await Promise.all(lanes);
}

// A dropped or chosen folder: its small files go in batches of multipart forms (each
// part named by its path, into `data-url`, the folder shown), the large ones one by
// one as resumable uploads. The panel shows the whole drop's progress and each file's.
class Tree {
  constructor(root, panel) {
    this.root = root;
    this.panel = panel;
    this.url = root.dataset.url;
    this.folder = root.dataset.folder || 'root';
    // The account's own page: a visitor through a link may not use the folders API.
    this.makeFolders = root.dataset.makeFolders !== 'false';
    this.batchBytes = Number(root.dataset.batchBytes) || 8 * 1024 * 1024;
    this.batchFiles = Number(root.dataset.batchFiles) || BATCH_FILES;
    this.summary = root.querySelector('.tree-summary');
    this.bar = root.querySelector('.tree-bar');
    this.list = root.querySelector('.tree-files');
    this.busy = false;
    this.queue = [];
  }

  add(files, folders = []) {
    if (!files.length && !folders.length) return;
    this.queue.push([files, folders]);
    if (!this.busy) this.run();
  }

  async run() {
    this.busy = true;
    while (this.queue.length) await this.send(...this.queue.shift());
    this.busy = false;
  }

  // Makes every folder of the drop in the folder shown (empty ones too), and returns
  // what was already there: path -> {size, sha256} of the files in those folders
  // that existed before. A drop sent again (after a reload, or after some batches
  // failed) then skips each file already stored at its path with the same bytes.
  async prepare(folders) {
    const stored = new Map();
    const problems = [];
    if (!this.makeFolders) return { stored, problems };
    await eachAtOnce(folders, 4, async (path) => {
      let answer;
      try {
        answer = await fetch('/api/folders', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          credentials: 'same-origin',
          body: JSON.stringify({ path, parent: this.folder }),
        });
      } catch {
        problems.push(`${path}: the connection failed`);
        return;
      }
      if (answer.status === 201) return; // made now: nothing in it yet
      if (answer.status !== 200) {
        problems.push(`${path}: ${await reason(answer)}`);
        return;
      }
      const { folder } = await answer.json();
      const listed = await fetch(`/api/folders/${encodeURIComponent(folder.id)}?limit=10000`, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (!listed.ok) return;
      for (const file of (await listed.json()).files) {
        stored.set(`${path}/${file.name}`.toLowerCase(), { size: file.size, sha256: file.sha256 });
      }
    });
    return { stored, problems };
  }

  // Whether `file` is already stored at its path with the same bytes.
  async alreadyThere(file, stored) {
    const found = stored.get((relativePathOf(file) || file.name).toLowerCase());
    if (!found || found.size !== file.size || !found.sha256) return false;
    try {
      return (await sha256Hex(file)) === found.sha256;
    } catch {
      return false; // unreadable now: send it, the server says what is wrong
    }
  }

  row(file) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'tree-name';
    label.textContent = relativePathOf(file) || file.name;
    const bar = document.createElement('progress');
    bar.max = Math.max(1, file.size);
    bar.value = 0;
    bar.setAttribute('aria-label', label.textContent);
    const state = document.createElement('span');
    state.className = 'tree-state';
    state.textContent = 'waiting';
    li.append(label, bar, state);
    this.list.append(li);
    return { li, bar, state };
  }

  async send(files, folders) {
    const top = files.length
      ? (relativePathOf(files[0]) || files[0].name).split('/')[0]
      : folders[0].split('/')[0];
    // Many files chosen at once (more than one request may hold) come here too.
    const label = files.length && !relativePathOf(files[0]) ? 'These files' : `Folder ${top}`;
    const small = files.filter((f) => f.size <= this.batchBytes);
    const large = files.filter((f) => f.size > this.batchBytes);
    let total = small.reduce((n, f) => n + f.size, 0);
    let done = 0, stored = 0, failed = 0, skipped = 0;
    let problems = [];
    this.root.hidden = false;
    this.list.replaceChildren();
    const rows = new Map(small.map((f) => [f, this.row(f)]));
    const draw = (extra) => {
      const sent = done + extra;
      this.bar.max = Math.max(1, total);
      this.bar.value = Math.min(sent, total);
      this.summary.textContent =
        `${label}: ${stored.toLocaleString()} of ${small.length.toLocaleString()} files stored, ` +
        `${humanBytes(sent)} of ${humanBytes(total)}` +
        (skipped ? `; ${skipped.toLocaleString()} already there` : '') +
        (failed ? `; ${failed.toLocaleString()} not stored` : '') +
        (problems.length ? `; folders not made: ${problems.join(', ')}` : '') +
        (large.length ? `; ${large.length.toLocaleString()} large files go up resumably below` : '') +
        '.';
    };
    draw(0);
    const prepared = await this.prepare(foldersOf(files, folders));
    const before = prepared.stored;
    problems = prepared.problems;
    if (large.length) this.panel.add(large);
    // What a sent-before drop already stored: counted as stored, not sent again.
    const fresh = [];
    for (const file of small) {
      if (before.size && (await this.alreadyThere(file, before))) {
        const part = rows.get(file);
        part.bar.value = part.bar.max;
        part.li.dataset.state = 'done';
        part.state.textContent = 'already there';
        skipped += 1;
        stored += 1;
        total -= file.size;
      } else {
        fresh.push(file);
      }
    }
    draw(0);
    let at = 0;
    while (at < fresh.length) {
      const batch = [];
      let bytes = 0;
      while (at < fresh.length && batch.length < this.batchFiles &&
             (!batch.length || bytes + fresh[at].size <= this.batchBytes)) {
        bytes += fresh[at].size;
        batch.push(fresh[at++]);
      }
      const answer = await this.post(batch, (sent) => {
        // The bytes sent so far, laid over the batch's files in order.
        let left = sent;
        for (const file of batch) {
          const part = rows.get(file);
          const mine = Math.min(file.size, Math.max(0, left));
          part.bar.value = mine;
          part.state.textContent = mine >= file.size ? 'sent' : mine > 0 ? 'sending' : 'waiting';
          left -= file.size;
        }
        draw(Math.min(sent, bytes));
      });
      done += bytes;
      for (const file of batch) {
        const part = rows.get(file);
        part.bar.value = part.bar.max;
        part.li.dataset.state = answer.ok ? 'done' : 'failed';
        part.state.textContent = answer.ok ? 'stored' : `not stored: ${answer.reason}`;
        if (answer.ok) stored += 1;
        else failed += 1;
      }
      draw(0);
    }
    this.root.dataset.state = failed ? 'failed' : 'done';
  }

  post(batch, onProgress) {
    return new Promise((resolve) => {
      const form = new FormData();
      // The part's filename carries the path: the server makes the folders it names.
      for (const file of batch) form.append('file', file, relativePathOf(file) || file.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', this.url);
      xhr.setRequestHeader('Accept', 'application/json');
      const whole = batch.reduce((n, f) => n + f.size, 0);
      xhr.upload.onprogress = (event) => {
        // The form's own bytes (boundaries, headers) are spread over the files.
        if (event.lengthComputable && event.total) onProgress(Math.floor(whole * event.loaded / event.total));
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve({ ok: true });
        let why = `HTTP ${xhr.status}`;
        try {
          const body = JSON.parse(xhr.responseText);
          if (body && typeof body.error === 'string') why = `${body.error} (HTTP ${xhr.status})`;
        } catch {
          // Not JSON (a proxy's page): the status says enough.
        }
        resolve({ ok: false, reason: why });
      };
      xhr.onerror = () => resolve({ ok: false, reason: 'the connection failed' });
      xhr.send(form);
    });
  }
}

function start() {
  const root = document.getElementById('resumable');
  if (!root || root.dataset.ready) return;
  root.dataset.ready = 'true';
  const panel = new Panel(root);
  const treeRoot = document.getElementById('tree-upload');
  if (treeRoot) {
    const tree = new Tree(treeRoot, panel);
    // The folder picker (webkitdirectory) and a drop that holds folders.
    document.addEventListener('folder-files', (event) => {
      event.preventDefault();
      tree.add([...event.detail]);
    });
    document.addEventListener('folder-drop', (event) => {
      event.preventDefault();
      filesOfEntries([...event.detail]).then(({ files, folders }) => tree.add(files, folders));
    });
  }
  // The picker's expression dispatches this with the files too large for signals;
  // preventDefault() tells it they are taken care of.
  document.addEventListener('resumable-files', (event) => {
    event.preventDefault();
    panel.add([...event.detail]);
  });
  // The picker's expression (and a drop) hand every file to the queue this way.
  document.addEventListener('upload-files', (event) => {
    event.preventDefault();
    panel.queue([...event.detail]);
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
