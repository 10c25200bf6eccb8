// SPDX-License-Identifier: MPL-2.0
//
// Live Replay: the liveclip dashboard (plain ES2020, no framework, no build).
//
// Served by the liveclip HTTP API at /ui/; every API path below is absolute
// from the same origin (`/{stream}/…`, `/{media-id}/…`).
//
// ─── Time model ──────────────────────────────────────────────────────────────
// Clips are asked for on a session's RECORDING TIME: seconds since that
// session's recording began (the sum of the EXTINF before a point).
//
//  * Preview player (`/{stream}/manifest/video.m3u8?duration=5m`): the response
//    says, in `preview-start-seconds`, at which recording time the playlist's
//    first segment starts, and in `stream-media-id`, which session it is.
//    hls.js places that first segment at `fragments[0].start` on its own
//    timeline (0 for a fresh load). So a player position p is
//
//        recording time = previewStart + (p - firstFragmentStart)
//
//    with previewStart and firstFragmentStart taken from the SAME (first)
//    load. hls.js keeps its timeline continuous while the live window slides,
//    so this anchor stays valid for the life of the hls.js instance.
//
//  * Main player rewatching a session (`/{media-id}/manifest/video.m3u8`, the
//    whole-session replay): its first segment is recording time 0, so
//    recording time = p (written as the same formula with previewStart = 0).
//
//  * Main player on the live window (`/{stream}/manifest/video.m3u8` while the
//    stream is live) is a sliding window with no recording-time header: it
//    can't be marked on (use the preview, or rewatch the session).
//
// ─── Latency ─────────────────────────────────────────────────────────────────
// The main player on the live window shows how far its picture is behind
// live, once a second: the wall clock minus the program date-time of the
// playing position (EXT-X-PROGRAM-DATE-TIME, the recording's wall clock),
// else hls.js's own estimate (the playlist's edge, aged since it was loaded,
// minus the position). A live playlist with #EXT-X-PART-INF is low-latency
// HLS (a stream recorded with part-duration): hls.js plays it in its
// lowLatencyMode, loading parts with blocking playlist reloads and holding
// PART-HOLD-BACK behind the edge, so nothing here sets a live sync duration
// (which would override that hold back).
//
// ─── Storyboard and posters ──────────────────────────────────────────────────
// Under a player whose position is a recording time (it has an anchor: a
// rewatched session, the preview) a strip seeks over the player's seekable
// range; hovering it shows the storyboard tile of the time under the pointer
// (`/{media-id}/storyboard.json` and its sprite, loaded when the strip is
// first hovered, and again after a while for a session still recorded). A
// clip made with Clip & Share has the still of its first frame as its poster
// (`/{media-id}/thumbnails/thumbnail.jpg?time=<In>`).
//
// ─── Markers ─────────────────────────────────────────────────────────────────
// Markers are named moments of a session (`/{media-id}/markers`, with
// `start`/`end` in recording time), also written into its playlists as
// EXT-X-DATERANGE tags. The page asks for the markers of the session it
// lists (the rewatched one, else the live one) and of the sessions under the
// strips; a live session's again every few seconds, and at once when hls.js
// reports a DATERANGE it had not seen. The strips draw them (a tick for a
// point, a band for a range), the Markers card lists them. "Clip this
// moment" sets In and Out to the range the server clips for the marker
// (a range as it is; a point from POINT_BEFORE before to POINT_AFTER after
// it), and Clip & Share then asks for the clip by `marker=` rather than by
// time, so the link names the moment. "Mark now" adds a marker at the live
// edge (`POST /{stream}/markers`).
//
// ─── Export ──────────────────────────────────────────────────────────────────
// The Clip & Share result has an Export row: a shape picker filled from the
// session's export profiles (`GET /{media-id}/exports`), a crop position for
// the shapes that crop, and an Export button that asks the server to
// re-encode the last clip's range (`POST /{media-id}/exports`, by `marker=`
// when the clip was made from one) and follows the export's status
// (`/{media-id}/exports/{n}`) until its file can be downloaded.
// ─────────────────────────────────────────────────────────────────────────────
//
// Test hooks: window.liveclip = { markIn(s), markOut(s), clip(), state, … }
// and console.log lines prefixed "liveclip: ".

'use strict';

(() => {
  // ───────────────────────────── basics ─────────────────────────────

  const $ = (id) => document.getElementById(id);
  const log = (msg) => console.log(`liveclip: ${msg}`);
  const enc = encodeURIComponent;

  const params = new URLSearchParams(location.search);
  /** Optional API token (`?token=`), passed on to every API request. */
  const TOKEN = params.get('token');
  /** The server's default max-clip-duration; the server checks it too. */
  const MAX_CLIP_SECONDS = 60;

  const SESSIONS_EVERY_MS = 10_000;
  const THUMB_EVERY_MS = 5_000;
  const MOTION_EVERY_MS = 15_000;
  const STORYBOARD_EVERY_MS = 15_000;
  /** A session's storyboard is asked for again after this (a live one grows). */
  const SESSION_STORYBOARD_STALE_MS = 10_000;
  /** Width of the storyboard tile shown over a strip, CSS pixels. */
  const TILE_BOX_WIDTH = 160;
  /** Width of a clip's poster (thumbnail.jpg of its first frame), pixels. */
  const POSTER_WIDTH = 640;
  const RETRY_MS = 5_000;
  const LATENCY_EVERY_MS = 1_000;
  /** Fastest playback rate hls.js may use to catch up with a low-latency stream. */
  const LL_CATCH_UP_RATE = 1.25;
  /** A live session's markers are asked for again after this. */
  const MARKERS_EVERY_MS = 3_000;
  /** After a failed markers request, the next try waits this long. */
  const MARKERS_RETRY_MS = 15_000;
  /** The class of a marker added with Mark now. */
  const MANUAL_MARKER_CLASS = 'com.liveclip.manual';
  /** What the server clips around a point marker: seconds before, after. */
  const POINT_BEFORE = 10;
  const POINT_AFTER = 5;
  /** How near (CSS pixels) the pointer must be to a point marker to name it. */
  const MARKER_HIT_PX = 5;

  const THUMB_URL = '/ui/thumbs/latest.jpg';
  const MOTION_URL = '/ui/motion/latest.mp4';
  const STORYBOARD_VTT_URL = '/ui/thumbs/storyboard.vtt';

  /** Absolute URL of an API path, with query parameters (and the token). */
  function apiUrl(path, query = {}) {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query)) {
      if (v !== null && v !== undefined) u.searchParams.set(k, String(v));
    }
    if (TOKEN) u.searchParams.set('token', TOKEN);
    return u.href;
  }

  /** An API failure: `reason` is the server's `error` text when it sent one. */
  class ApiError extends Error {
    constructor(reason, status = 0, kind = '') {
      super(reason);
      this.status = status;
      this.kind = kind;
    }
  }

  /** Turns a failed response into an ApiError carrying the JSON `error`. */
  async function responseError(response) {
    let reason = `HTTP ${response.status} ${response.statusText || ''}`.trim();
    let kind = '';
    try {
      const body = await response.json();
      if (body && body.error) {
        reason = body.error;
        kind = body.kind || '';
      }
    } catch (_) {
      /* not JSON: keep the HTTP status line */
    }
    return new ApiError(reason, response.status, kind);
  }

  async function apiFetch(url, init = {}) {
    let response;
    try {
      response = await fetch(url, { cache: 'no-store', ...init });
    } catch (e) {
      throw new ApiError(`network error: ${e.message}`, 0, 'network');
    }
    if (!response.ok) throw await responseError(response);
    return response;
  }

  async function getJSON(url) {
    return (await apiFetch(url)).json();
  }

  /** A response header from hls.js's networkDetails (XHR, or fetch Response). */
  function responseHeader(networkDetails, name) {
    if (!networkDetails) return null;
    try {
      if (typeof networkDetails.getResponseHeader === 'function') {
        return networkDetails.getResponseHeader(name);
      }
      if (networkDetails.headers && typeof networkDetails.headers.get === 'function') {
        return networkDetails.headers.get(name);
      }
    } catch (_) {
      /* headers not readable */
    }
    return null;
  }

  const round3 = (x) => Math.round(x * 1000) / 1000;
  const pad2 = (n) => String(n).padStart(2, '0');

  /** `H:MM:SS` (durations: `1:02:03`), or with `decimals` fractional digits. */
  function fmtClock(seconds, decimals = 0) {
    if (!Number.isFinite(seconds)) return '—';
    const sign = seconds < 0 ? '-' : '';
    const scale = 10 ** decimals;
    const units = Math.round(Math.abs(seconds) * scale);
    const frac = units % scale;
    const whole = (units - frac) / scale;
    const h = Math.floor(whole / 3600);
    const m = Math.floor(whole / 60) % 60;
    const s = whole % 60;
    let out = `${sign}${h}:${pad2(m)}:${pad2(s)}`;
    if (decimals > 0) out += `.${String(frac).padStart(decimals, '0')}`;
    return out;
  }

  /** Recording time as shown next to the marks: `12.345 s`. */
  const fmtSeconds = (s) => (Number.isFinite(s) ? `${s.toFixed(3)} s` : '—');

  /** `2026-11-23 16:13:22 UTC` from an RFC 3339 string (or `—`). */
  function fmtUtc(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
  }

  function fmtBytes(n) {
    if (!Number.isFinite(n)) return '';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  const nowUtc = () => new Date().toISOString().slice(11, 19);

  /** A bit rate for people: `2.4 Mb/s`, `850 kb/s`. */
  function fmtRate(bps) {
    if (!Number.isFinite(bps) || bps <= 0) return '';
    return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
  }

  /**
   * An hls.js level of a ladder as the viewer sees it: its rendition (the
   * `rendition=` of its URI, which the API's multivariant playlists carry),
   * else its height, and its bit rate: `720p · 2.4 Mb/s`.
   */
  function levelLabel(level) {
    let name = level.name || '';
    try {
      const uri = level.uri || (Array.isArray(level.url) ? level.url[0] : level.url);
      name = new URL(uri, location.href).searchParams.get('rendition') || name;
    } catch (_) {
      /* no URI: keep the name */
    }
    if (!name) name = level.height ? `${level.height}p` : 'audio';
    const rate = fmtRate(level.bitrate);
    return rate ? `${name} · ${rate}` : name;
  }

  // ───────────────────────────── status line ─────────────────────────────

  let statusTimer = null;

  /** Shows a message; info/ok messages fade after a while, errors stay. */
  function setStatus(text, level = 'info') {
    const el = $('status');
    el.textContent = `${nowUtc()}  ${text}`;
    el.className = `status ${level}`;
    clearTimeout(statusTimer);
    if (level !== 'error') {
      statusTimer = setTimeout(() => {
        el.textContent = 'Ready';
        el.className = 'status idle';
      }, 8000);
    }
  }

  /** An error for the user (status line) and for tests (console). */
  function reportError(where, reason) {
    log(`error ${where}: ${reason}`);
    setStatus(`${where}: ${reason}`, 'error');
  }

  /** The reason of a fatal hls.js error, preferring the API's JSON `error`. */
  function hlsErrorReason(data) {
    const nd = data.networkDetails;
    try {
      // Playlists are loaded as text, so an API error body is readable here.
      const text = nd && typeof nd.responseText === 'string' ? nd.responseText : '';
      if (text) {
        const body = JSON.parse(text);
        if (body && body.error) return body.error;
      }
    } catch (_) {
      /* binary or non-JSON body */
    }
    const code = data.response && data.response.code;
    const detail = data.reason || (data.error && data.error.message) || '';
    return `${data.details}${code ? ` (HTTP ${code})` : ''}${detail ? `: ${detail}` : ''}`;
  }

  // ───────────────────────────── players ─────────────────────────────

  /**
   * One <video> driven by hls.js. `anchor` maps the player's position to a
   * session's recording time (see the time model at the top):
   *   { mediaId, recStart, fragStart }  →  recording = recStart + (t - fragStart)
   * It is null when the loaded playlist has no known recording time.
   */
  class Player {
    /**
     * @param {string} name       for messages: "main", "preview", "clip"
     * @param {HTMLVideoElement} video
     * @param {object} opts
     *   retry:      reload after a fatal error (live sources)
     *   anchorFrom: (manifestData, levelData) => {mediaId, recStart} | null,
     *               asked at the first LEVEL_LOADED (for a multivariant
     *               playlist, the first media playlist says what it is)
     *   levelUi:    { chip, picker, select } elements showing the playing
     *               rendition of a ladder and picking one (or Auto)
     *   onAnchor, onLevel, onPlaying: callbacks
     */
    constructor(name, video, opts = {}) {
      this.name = name;
      this.video = video;
      this.opts = opts;
      this.hls = null;
      this.url = null;
      this.gen = 0; // load generation: events of older loads are ignored
      this.anchor = null;
      this.manifestData = null; // MANIFEST_LOADED of this load, until anchored
      this.details = null; // the last loaded media playlist (hls.js LevelDetails)
      this.lowLatency = null; // { partTarget, partHoldBack, canBlockReload } of an LL playlist
      this.retryTimer = null;
      this.mediaRecoveries = 0;
      this.playingLogged = false;
      this.scrub = null; // the storyboard strip under the player (a Scrub sets it)
      this.dateRangeSig = null; // what the last playlist's EXT-X-DATERANGE tags said
      video.addEventListener('playing', () => {
        if (!this.playingLogged && this.hls) {
          this.playingLogged = true;
          this.joinLive();
          if (this.opts.onPlaying) this.opts.onPlaying(this);
        }
      });
      const ui = opts.levelUi;
      if (ui) {
        ui.select.addEventListener('change', () => this.pickLevel(Number(ui.select.value)));
      }
    }

    /** Loads `url` in a fresh hls.js instance; `config` adds hls.js settings. */
    load(url, config = {}) {
      this.stop();
      this.url = url;
      this.config = config;
      const gen = ++this.gen;
      if (!window.Hls) {
        reportError(this.name, 'hls.js did not load (hls.min.js missing?)');
        return;
      }
      if (!Hls.isSupported()) {
        reportError(this.name, 'this browser has no Media Source Extensions for hls.js');
        return;
      }
      const hls = new Hls({ enableWorker: true, ...config });
      this.hls = hls;
      const current = () => gen === this.gen;

      hls.on(Hls.Events.MANIFEST_LOADED, (_e, data) => {
        if (!current()) return;
        // The first load: the one the player's timeline starts from.
        this.manifestData = data;
      });

      hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
        if (!current()) return;
        // hls.js's own LEVEL_LOADED handlers (registered first) have already
        // merged and aligned this playlist with the previous one, so
        // fragments[0].start is on the player's timeline.
        const frags = data.details && data.details.fragments;
        const fragStart = frags && frags.length ? frags[0].start : 0;
        this.details = data.details || null;
        this.noteLowLatency(this.details);
        this.noteDateRanges(this.details);
        if (!this.anchor && this.manifestData) {
          const found = this.opts.anchorFrom ? this.opts.anchorFrom(this.manifestData, data, this) : null;
          this.manifestData = null;
          if (found) {
            this.anchor = { ...found, fragStart };
            if (this.opts.onAnchor) this.opts.onAnchor(this);
            if (this.scrub) this.scrub.show(this.anchor.mediaId);
          }
        }
        if (this.opts.onLevel) this.opts.onLevel(data, fragStart, this);
      });

      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        if (!current()) return;
        this.showLevels();
        if (this.video.autoplay) this.video.play().catch(() => {});
      });

      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        if (!current()) return;
        this.levelSwitched(data.level);
      });

      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!current() || !data.fatal) return; // non-fatal: hls.js retries itself
        reportError(`${this.name} player`, hlsErrorReason(data));
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
          this.mediaRecoveries += 1;
          hls.recoverMediaError();
          return;
        }
        // Retry live sources, unless the answer says retrying can't help
        // (a bad request, a missing token, a deleted session…).
        const code = data.response && data.response.code;
        if (this.opts.retry && ![400, 401, 403, 405, 410, 416].includes(code)) {
          this.retryTimer = setTimeout(() => {
            if (current()) {
              log(`${this.name} retry ${this.url}`);
              this.load(this.url, this.config);
            }
          }, RETRY_MS);
        }
      });

      log(`${this.name} load ${url}`);
      hls.loadSource(url);
      hls.attachMedia(this.video);
    }

    /** Same source again (a fresh window for live sources). */
    reload() {
      if (this.url) this.load(this.url, this.config);
    }

    stop() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.gen += 1;
      this.anchor = null;
      this.manifestData = null;
      this.details = null;
      this.lowLatency = null;
      this.dateRangeSig = null;
      this.mediaRecoveries = 0;
      this.playingLogged = false;
      if (this.scrub) this.scrub.hide();
      if (this.hls) {
        this.hls.destroy();
        this.hls = null;
      }
      this.hideLevels();
    }

    // ── the renditions of a ladder (a multivariant playlist) ──

    /** The levels hls.js plays, when there are several (a ladder); else []. */
    ladder() {
      const levels = (this.hls && this.hls.levels) || [];
      return levels.length > 1 ? levels : [];
    }

    /** Fills the rendition picker (Auto, then highest first); hidden for one level. */
    showLevels() {
      const ui = this.opts.levelUi;
      const levels = this.ladder();
      if (!ui || !levels.length) {
        this.hideLevels();
        return;
      }
      const order = levels
        .map((level, i) => ({ level, i }))
        .sort((a, b) => (b.level.height || 0) - (a.level.height || 0) || b.level.bitrate - a.level.bitrate);
      ui.select.textContent = '';
      const option = (value, text) => {
        const o = document.createElement('option');
        o.value = String(value);
        o.textContent = text;
        ui.select.append(o);
      };
      option(-1, 'Auto');
      for (const { level, i } of order) option(i, levelLabel(level));
      ui.select.value = String(this.hls.autoLevelEnabled ? -1 : this.hls.manualLevel);
      ui.picker.hidden = false;
      log(`${this.name} levels ${order.map(({ level }) => levelLabel(level)).join(', ')}`);
    }

    hideLevels() {
      const ui = this.opts.levelUi;
      if (!ui) return;
      ui.picker.hidden = true;
      ui.chip.hidden = true;
      ui.chip.textContent = '';
      ui.select.textContent = '';
    }

    /** Shows the rendition hls.js now plays (LEVEL_SWITCHED). */
    levelSwitched(index) {
      const ui = this.opts.levelUi;
      const level = this.ladder()[index];
      if (!ui || !level) return;
      const label = levelLabel(level);
      ui.chip.textContent = label;
      ui.chip.title = [level.width && `${level.width}×${level.height}`, level.codecs || level.codecSet]
        .filter(Boolean)
        .join(', ');
      ui.chip.hidden = false;
      log(`level ${level.height || 0} ${this.name} ${label}`);
    }

    /**
     * The viewer's pick: a level now (hls.currentLevel, which drops what is
     * buffered of the old one), or Auto (-1) from the next fragment on,
     * without dropping anything.
     */
    pickLevel(index) {
      const hls = this.hls;
      if (!hls || !this.ladder().length) return;
      if (index < 0) {
        hls.loadLevel = -1;
        log(`${this.name} pick auto`);
      } else {
        hls.currentLevel = index;
        log(`${this.name} pick ${levelLabel(hls.levels[index])}`);
      }
    }

    // ── markers in the playlist ──

    /**
     * The EXT-X-DATERANGE tags of the loaded playlist as hls.js parsed them
     * (`details.dateRanges`), as plain objects by start date.
     */
    dateRanges() {
      const ranges = (this.details && this.details.dateRanges) || {};
      return Object.values(ranges)
        .filter(Boolean)
        .map((d) => {
          const attributes = {};
          for (const key of Object.keys(d.attr || {})) {
            if (key.startsWith('X-') || key.startsWith('SCTE35-')) attributes[key] = d.attr[key];
          }
          const startDate = d.startDate && Number.isFinite(d.startDate.getTime()) ? d.startDate.toISOString() : null;
          return {
            id: d.id,
            class: d.class || null,
            startDate,
            duration: d.duration,
            plannedDuration: d.plannedDuration,
            attributes,
          };
        })
        .sort((a, b) => String(a.startDate).localeCompare(String(b.startDate)) || a.id.localeCompare(b.id));
    }

    /** Tells the page when the playlist's date ranges changed (new, ended, …). */
    noteDateRanges(details) {
      if (!details) return;
      const ranges = this.dateRanges();
      const sig = JSON.stringify(ranges.map((d) => [d.id, d.duration, d.plannedDuration]));
      if (sig === this.dateRangeSig) return;
      const first = this.dateRangeSig === null;
      this.dateRangeSig = sig;
      if (first && !ranges.length) return;
      log(`${this.name} dateranges ${ranges.length}${ranges.length ? ` ${ranges.map((d) => d.id).join(' ')}` : ''}`);
      dateRangesChanged(this);
    }

    // ── low-latency HLS and the latency behind live ──

    /**
     * Notes a low-latency playlist (one with #EXT-X-PART-INF: hls.js gives
     * its part target) the first time one loads.
     */
    noteLowLatency(details) {
      if (this.lowLatency || !details || !details.live || !(details.partTarget > 0)) return;
      this.lowLatency = {
        partTarget: details.partTarget,
        partHoldBack: details.partHoldBack || 0,
        canBlockReload: !!details.canBlockReload,
      };
      const ll = this.lowLatency;
      log(
        `${this.name} low-latency part-target ${ll.partTarget.toFixed(3)}` +
          ` part-hold-back ${ll.partHoldBack.toFixed(3)} can-block-reload ${ll.canBlockReload}`,
      );
      if (this.opts.onLowLatency) this.opts.onLowLatency(this);
    }

    /**
     * At the start of a low-latency live playlist: jumps to hls.js's live
     * sync point (PART-HOLD-BACK behind the edge) when the picture starts
     * more than a quarter part further behind, within what is buffered. hls.js
     * starts at that point as the first playlist placed it, and the live
     * edge moves on while the first parts load and decode; catching up by
     * playing faster would take seconds.
     */
    joinLive() {
      const hls = this.hls;
      const ll = this.lowLatency;
      if (!hls || !ll) return;
      const now = this.video.currentTime;
      const target = hls.liveSyncPosition;
      if (!Number.isFinite(target) || target <= now + ll.partTarget / 4) return;
      const b = this.video.buffered;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) <= now && target < b.end(i)) {
          this.video.currentTime = target;
          log(`${this.name} joined live ${(target - now).toFixed(3)} s ahead`);
          return;
        }
      }
    }

    /**
     * Seconds the picture is behind live (see "Latency" at the top), or
     * null when the player is not on a live playlist or shows nothing yet.
     */
    behindLive() {
      const hls = this.hls;
      const details = this.details;
      if (!hls || !details || !details.live || !(this.video.currentTime > 0)) return null;
      const date = hls.playingDate;
      if (date) {
        const seconds = (Date.now() - date.getTime()) / 1000;
        // Negative: the server's clock runs ahead of this one; then the
        // player's estimate is the better one.
        if (seconds >= 0) return seconds;
      }
      const estimate = hls.latency;
      return Number.isFinite(estimate) && estimate > 0 ? estimate : null;
    }

    /** Recording time of the current position, or null without an anchor. */
    recordingTime() {
      const a = this.anchor;
      if (!a) return null;
      return a.recStart + (this.video.currentTime - a.fragStart);
    }
  }

  // ───────────────────────────── page state ─────────────────────────────

  /** What the tests read (window.liveclip.state): the marks and the preview. */
  const state = {
    mediaId: null, // session the marks belong to
    inTime: null, // recording time, seconds
    outTime: null, // recording time, seconds
    previewStart: null, // preview-start-seconds of the preview's (first) load
    previewMediaId: null, // stream-media-id of the preview
    previewFragStart: null, // hls.js start of the preview's first fragment
    stream: null,
    mainMode: 'live', // 'live' | 'replay'
    mainMediaId: null, // the session shown in the main player
    lastClip: null, // { manifestUrl, mp4Url, filename, posterUrl, marker, media, query, duration } of the last Clip & Share
    lastExport: null, // { id, profile, cropX, state, progress, fileUrl, filename, error } of the last export
    marker: null, // { mediaId, id, inTime, outTime }: the marks came from this marker
    lowLatency: false, // the main player plays a low-latency live playlist
    latency: null, // seconds the main player's live picture is behind live
  };

  let stream = null;
  let clipBusy = false; // a Clip & Share request is under way
  let sessions = []; // last /sessions answer, deleted ones left out
  let liveSessionId; // media id of the live session (undefined until known)

  // ── main player ──

  const mainPlayer = new Player('main', $('live-player'), {
    retry: true,
    levelUi: { chip: $('main-level'), picker: $('main-level-picker'), select: $('main-level-select') },
    anchorFrom(data, levelData) {
      // Rewatching: the session is the one asked for. Live: the header says.
      const mediaId =
        state.mainMode === 'replay'
          ? state.mainMediaId
          : responseHeader(data.networkDetails, 'stream-media-id') || state.mainMediaId;
      if (mediaId) state.mainMediaId = mediaId;
      queueMicrotask(updateMainUi);
      // The media playlist says what it is (the manifest may be a ladder's
      // multivariant playlist, which does not).
      const details = levelData.details;
      // A session's replay (VOD, or EVENT while it is recorded) starts at
      // recording time 0. The stream's live playlist is a sliding window
      // with no recording-time reference: no anchor.
      const slidingWindow = details && details.live && details.type !== 'EVENT';
      if (state.mainMode === 'live' && slidingWindow) return null;
      return { mediaId, recStart: 0 };
    },
    onLevel(data) {
      // A new session started on the stream: the live window now belongs to
      // it, and hls.js can't follow that switch; start over.
      const mediaId = responseHeader(data.networkDetails, 'stream-media-id');
      if (state.mainMode === 'live' && mediaId && state.mainMediaId && mediaId !== state.mainMediaId) {
        log(`main new session ${mediaId}; reloading live`);
        state.mainMediaId = mediaId;
        mainPlayer.reload();
      }
    },
    onAnchor() {
      updateMainUi();
    },
    onLowLatency(p) {
      // Catch up (play a little faster) toward PART-HOLD-BACK when the
      // picture fell behind, e.g. after a stall; hls.js reads its config
      // as it plays, and does this only in lowLatencyMode.
      p.hls.config.maxLiveSyncPlaybackRate = LL_CATCH_UP_RATE;
      updateLatency();
    },
    onPlaying() {
      if (state.mainMode === 'live') log('live playing');
      else log(`replay playing ${state.mainMediaId}`);
    },
  });

  function playLive() {
    state.mainMode = 'live';
    state.mainMediaId = null;
    // hls.js's default, said here: a low-latency playlist plays as one.
    mainPlayer.load(apiUrl(`/${enc(stream)}/manifest/video.m3u8`), { lowLatencyMode: true });
    updateMainUi();
    updateSessionHighlights();
    renderMarkers();
  }

  /** Plays a session's replay in the main player, from recording time `at`. */
  function rewatch(mediaId, at = 0) {
    state.mainMode = 'replay';
    state.mainMediaId = mediaId;
    log(`rewatch ${mediaId}${at ? ` at ${at.toFixed(3)}` : ''}`);
    // From `at` (the start by default), also for a session still recorded
    // (an EVENT playlist, which hls.js would otherwise join at its live
    // edge). The replay's player time is its recording time.
    mainPlayer.load(apiUrl(`/${enc(mediaId)}/manifest/video.m3u8`), { startPosition: at });
    updateMainUi();
    updateSessionHighlights();
    loadMarkers(mediaId);
    renderMarkers();
    setStatus(`Rewatching session ${mediaId}`, 'info');
  }

  /** Shows (and logs) how far the live picture is behind live. */
  function updateLatency() {
    const live = state.mainMode === 'live';
    state.lowLatency = live && mainPlayer.lowLatency !== null;
    $('main-ll').hidden = !state.lowLatency;
    const seconds = live ? mainPlayer.behindLive() : null;
    state.latency = seconds;
    const chip = $('main-latency');
    if (seconds === null) {
      chip.hidden = true;
      return;
    }
    chip.textContent = `${seconds.toFixed(1)} s behind live`;
    // Further behind than the player means to be (its hold back and two parts).
    const ll = mainPlayer.lowLatency;
    chip.classList.toggle('far', ll !== null && seconds > ll.partHoldBack + 2 * ll.partTarget);
    chip.hidden = false;
    log(`latency ${seconds.toFixed(3)}`);
  }

  function updateMainUi() {
    const live = state.mainMode === 'live';
    const chip = $('main-mode');
    chip.textContent = live ? 'LIVE' : 'REPLAY';
    chip.className = `chip ${live ? 'chip-live' : 'chip-replay'}`;
    $('back-to-live').hidden = live;
    if (!live) {
      // Behind live means nothing for a replay.
      $('main-ll').hidden = true;
      $('main-latency').hidden = true;
      state.lowLatency = false;
      state.latency = null;
    }
    const s = sessions.find((x) => x.media_id === state.mainMediaId);
    $('main-info').textContent = state.mainMediaId
      ? `${state.mainMediaId}${s ? ` · ${fmtUtc(s.start_utc)}` : ''}`
      : '';
  }

  // ── preview player ──

  const previewPlayer = new Player('preview', $('preview-player'), {
    retry: true,
    anchorFrom(data) {
      const start = parseFloat(responseHeader(data.networkDetails, 'preview-start-seconds'));
      const mediaId = responseHeader(data.networkDetails, 'stream-media-id');
      if (!Number.isFinite(start) || !mediaId) {
        reportError('preview', 'the preview answer has no preview-start-seconds / stream-media-id header');
        return null;
      }
      return { mediaId, recStart: start };
    },
    onAnchor(p) {
      // recording time = previewStart + (currentTime - previewFragStart)
      state.previewStart = p.anchor.recStart;
      state.previewMediaId = p.anchor.mediaId;
      state.previewFragStart = p.anchor.fragStart;
      log(
        `preview-start-seconds ${p.anchor.recStart.toFixed(3)} media ${p.anchor.mediaId}` +
          ` first-fragment ${p.anchor.fragStart.toFixed(3)}`,
      );
      $('preview-start').textContent = `${fmtSeconds(p.anchor.recStart)} (${fmtClock(p.anchor.recStart, 3)})`;
      $('preview-media').textContent = p.anchor.mediaId;
      refreshMarkers();
    },
    onLevel(data, fragStart, p) {
      const a = p.anchor;
      if (!a) return;
      const mediaId = responseHeader(data.networkDetails, 'stream-media-id');
      if (mediaId && mediaId !== a.mediaId) {
        // The stream moved to a new session: a new timeline, so a new load.
        log(`preview new session ${mediaId}; reloading the preview`);
        setStatus(`A new session started (${mediaId}); preview reloaded`, 'info');
        p.reload();
        return;
      }
      // Each reload of the sliding window says where its first segment is;
      // it should agree with the anchor. Report (don't hide) a disagreement.
      const start = parseFloat(responseHeader(data.networkDetails, 'preview-start-seconds'));
      if (Number.isFinite(start)) {
        const predicted = a.recStart + (fragStart - a.fragStart);
        if (Math.abs(predicted - start) > 0.25) {
          log(`preview anchor drift ${(start - predicted).toFixed(3)} s (window start ${start.toFixed(3)})`);
        }
      }
    },
    onPlaying() {
      log('preview playing');
    },
  });

  function loadPreview() {
    const minutes = $('preview-minutes').value || '5';
    state.previewStart = null;
    state.previewMediaId = null;
    state.previewFragStart = null;
    $('preview-start').textContent = '—';
    $('preview-media').textContent = '—';
    previewPlayer.load(apiUrl(`/${enc(stream)}/manifest/video.m3u8`, { duration: `${minutes}m` }));
  }

  // ── clip player ──

  const clipPlayer = new Player('clip', $('clip-player'), {
    onPlaying() {
      log('clip playing');
    },
  });

  // ───────────────────────────── storyboard strips ─────────────────────────────

  /**
   * Storyboards of sessions (`/{media-id}/storyboard.json` and its sprite),
   * by media id: { board, loading, at } with `at` the end of the last
   * attempt and `board`
   *   { mediaId, tiles: [{ start, x, y }] by start (recording time),
   *     tileWidth, tileHeight, duration, sprite (an object URL),
   *     spriteWidth, spriteHeight, final (an ended session's: never changes) }
   */
  const storyboards = new Map();
  /** Sessions whose storyboards are kept while no strip shows them. */
  const STORYBOARDS_KEPT = 4;

  /** The storyboard of a session: its JSON, then the sprite it names. */
  async function fetchStoryboard(mediaId) {
    const jsonUrl = apiUrl(`/${enc(mediaId)}/storyboard.json`);
    const interval = (sb) => (sb.tiles.length > 1 ? sb.tiles[1].start - sb.tiles[0].start : null);
    for (let attempt = 1; ; attempt += 1) {
      const response = await apiFetch(jsonUrl);
      const final = /immutable/.test(response.headers.get('cache-control') || '');
      const sb = await response.json();
      sb.tiles = [...(sb.tiles || [])].sort((a, b) => a.start - b.start);
      if (!sb.tiles.length || !(sb.tile_width > 0) || !(sb.tile_height > 0)) {
        throw new Error('the storyboard has no tiles');
      }
      // The sprite's URL is relative to the JSON (and carries the token).
      const blob = await (await apiFetch(new URL(sb.url, jsonUrl).href)).blob();
      const sprite = URL.createObjectURL(blob);
      const img = new Image();
      img.src = sprite;
      let ok = true;
      try {
        await img.decode();
      } catch (_) {
        ok = false;
      }
      // A live session's tiles grow further apart as it grows (at most 100
      // tiles): the sprite matches the JSON when the interval is the same
      // after it as before.
      let same = true;
      if (ok && !final && interval(sb) !== null) {
        const after = await getJSON(jsonUrl);
        const later = interval({ tiles: [...(after.tiles || [])].sort((a, b) => a.start - b.start) });
        same = later === null || later === interval(sb);
      }
      const inside = (t) => t.x + sb.tile_width <= img.naturalWidth && t.y + sb.tile_height <= img.naturalHeight;
      const fits = ok && sb.tiles.every(inside);
      if (ok && same && fits) {
        return {
          mediaId,
          tiles: sb.tiles,
          tileWidth: sb.tile_width,
          tileHeight: sb.tile_height,
          duration: sb.duration,
          sprite,
          spriteWidth: img.naturalWidth,
          spriteHeight: img.naturalHeight,
          final,
        };
      }
      URL.revokeObjectURL(sprite);
      if (!ok) throw new Error('the sprite does not decode');
      if (attempt >= 3) {
        throw new Error(`the sprite (${img.naturalWidth}x${img.naturalHeight}) does not match the storyboard's tiles`);
      }
    }
  }

  /**
   * The entry of a session's storyboard, loading it when it was never
   * loaded, or when a live session's is older than
   * SESSION_STORYBOARD_STALE_MS (a failure waits as long before the next try).
   */
  function storyboardFor(mediaId) {
    let entry = storyboards.get(mediaId);
    if (!entry) {
      entry = { board: null, loading: null, at: 0 };
      storyboards.set(mediaId, entry);
    }
    const settled = entry.board && entry.board.final;
    if (entry.loading || settled || Date.now() - entry.at < SESSION_STORYBOARD_STALE_MS) return entry;
    entry.loading = fetchStoryboard(mediaId)
      .then((board) => {
        const old = entry.board;
        entry.board = board;
        log(`storyboard ${board.tiles.length} tiles ${mediaId}`);
        for (const s of scrubs) if (s.mediaId === mediaId) s.redraw();
        if (old) URL.revokeObjectURL(old.sprite);
      })
      .catch((e) => {
        // The strip still seeks; it shows times without pictures.
        log(`storyboard unavailable ${mediaId}: ${e.message}`);
      })
      .finally(() => {
        entry.loading = null;
        entry.at = Date.now();
      });
    // Forget the storyboards of sessions no strip shows.
    for (const [id, e] of storyboards) {
      if (storyboards.size <= STORYBOARDS_KEPT) break;
      if (id === mediaId || e.loading || scrubs.some((s) => s.mediaId === id)) continue;
      if (e.board) URL.revokeObjectURL(e.board.sprite);
      storyboards.delete(id);
    }
    return entry;
  }

  /** The tile shown at recording time `time`: the last one starting at or before it. */
  function tileAt(board, time) {
    const tiles = board.tiles;
    let lo = 0;
    let hi = tiles.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (tiles[mid].start <= time + 1e-6) lo = mid;
      else hi = mid - 1;
    }
    return { index: lo, ...tiles[lo] };
  }

  /**
   * The strip under a player whose position is a recording time (it has an
   * anchor: a rewatched session, the preview): a seek bar over the player's
   * seekable range. Hovering shows the storyboard tile of the time under the
   * pointer (the sprite as the background of a small box); a click or a drag
   * seeks there. The storyboard loads when the pointer first comes over it.
   * The session's markers are drawn over it (a tick for a point, a band for
   * a range), and the tip names the marker under the pointer.
   */
  class Scrub {
    constructor(player, el) {
      this.player = player;
      this.el = el;
      this.track = el.querySelector('.scrub-track');
      this.played = el.querySelector('.scrub-played');
      this.tip = el.querySelector('.scrub-tip');
      this.tile = el.querySelector('.scrub-tile');
      this.timeLabel = el.querySelector('.scrub-time');
      this.markLayer = el.querySelector('.scrub-marks');
      this.markName = el.querySelector('.scrub-marker-name');
      this.markEls = new Map(); // marker id -> its tick or band
      this.mediaId = null; // the session of the player's anchor
      this.pointer = null; // fraction of the strip under the pointer, while over it
      this.shown = null; // index of the tile shown
      this.dragging = false;
      player.scrub = this;
      el.addEventListener('pointerenter', (e) => {
        this.ensureBoard();
        this.hover(e);
      });
      el.addEventListener('pointermove', (e) => {
        this.hover(e);
        if (this.dragging) this.seek();
      });
      el.addEventListener('pointerleave', () => {
        if (!this.dragging) this.leave();
      });
      el.addEventListener('pointerdown', (e) => {
        if (e.button !== 0) return;
        this.dragging = true;
        try {
          el.setPointerCapture(e.pointerId);
        } catch (_) {
          /* no such pointer: no capture, the drag ends when it leaves */
        }
        this.ensureBoard();
        this.hover(e);
        this.seek();
      });
      const end = (e) => {
        if (!this.dragging) return;
        this.dragging = false;
        // A touch is gone when it lifts; a mouse may have left while dragging.
        const r = el.getBoundingClientRect();
        const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
        if (e.pointerType !== 'mouse' || !inside) this.leave();
      };
      el.addEventListener('pointerup', end);
      el.addEventListener('pointercancel', end);
    }

    show(mediaId) {
      this.mediaId = mediaId;
      this.el.hidden = false;
      loadMarkers(mediaId);
      this.tick();
    }

    hide() {
      this.mediaId = null;
      this.dragging = false;
      this.el.hidden = true;
      this.leave();
      this.drawMarkers();
    }

    leave() {
      this.pointer = null;
      this.shown = null;
      this.tip.hidden = true;
    }

    ensureBoard() {
      if (this.mediaId) storyboardFor(this.mediaId);
    }

    /** The player's seekable range (player time), or null. */
    range() {
      const s = this.player.video.seekable;
      if (!s || !s.length) return null;
      const start = s.start(0);
      const end = s.end(s.length - 1);
      return Number.isFinite(start) && Number.isFinite(end) && end > start ? { start, end } : null;
    }

    /** { playerTime, time (recording time) } under the pointer, or null. */
    at() {
      const range = this.range();
      const a = this.player.anchor;
      if (this.pointer === null || !range || !a) return null;
      const playerTime = range.start + this.pointer * (range.end - range.start);
      return { playerTime, time: a.recStart + (playerTime - a.fragStart) };
    }

    hover(e) {
      const rect = this.track.getBoundingClientRect();
      if (!(rect.width > 0)) return;
      this.pointer = Math.min(1, Math.max(0, (e.clientX - rect.left) / rect.width));
      this.redraw();
    }

    seek() {
      const at = this.at();
      if (at) this.player.video.currentTime = at.playerTime;
    }

    /** Shows the time under the pointer and its tile (when the storyboard is in). */
    redraw() {
      const at = this.at();
      if (!at) {
        this.tip.hidden = true;
        return;
      }
      const entry = storyboards.get(this.mediaId);
      const board = entry && entry.board;
      // Past what a live session's storyboard covered when it loaded: a newer one.
      if (board && !board.final && at.time > board.duration) this.ensureBoard();
      const tile = board ? tileAt(board, at.time) : null;
      this.timeLabel.textContent = fmtClock(at.time, 1);
      const marker = this.markerAt(at.time);
      this.markName.textContent = marker ? markerName(marker) : '';
      this.markName.hidden = !marker;
      if (tile) {
        const scale = TILE_BOX_WIDTH / board.tileWidth;
        const s = this.tile.style;
        s.width = `${TILE_BOX_WIDTH}px`;
        s.height = `${Math.round(board.tileHeight * scale)}px`;
        s.backgroundImage = `url("${board.sprite}")`;
        s.backgroundSize = `${board.spriteWidth * scale}px ${board.spriteHeight * scale}px`;
        s.backgroundPosition = `${-tile.x * scale}px ${-tile.y * scale}px`;
      }
      this.tile.hidden = !tile;
      this.tip.hidden = false;
      const width = this.track.clientWidth;
      const tipWidth = this.tip.offsetWidth;
      const left = Math.min(Math.max(0, width - tipWidth), Math.max(0, this.pointer * width - tipWidth / 2));
      this.tip.style.left = `${left}px`;
      const index = tile ? tile.index : null;
      if (index !== null && index !== this.shown) {
        log(`storyboard tile ${this.player.name} ${index} at ${at.time.toFixed(3)}`);
      }
      this.shown = index;
    }

    /** Follows the playing position (and a live range moving under the pointer). */
    tick() {
      if (this.el.hidden) return;
      const range = this.range();
      const f = range ? (this.player.video.currentTime - range.start) / (range.end - range.start) : 0;
      this.played.style.width = `${(Math.min(1, Math.max(0, f)) * 100).toFixed(2)}%`;
      this.drawMarkers();
      if (this.pointer !== null) this.redraw();
    }

    /** Fraction of the strip at recording time `time` (may lie outside 0…1), or null. */
    fraction(time) {
      const range = this.range();
      const a = this.player.anchor;
      if (!range || !a) return null;
      return (a.fragStart + (time - a.recStart) - range.start) / (range.end - range.start);
    }

    /**
     * The session's markers over the strip, where the player's range has
     * them (a preview's window may have slid past one); the elements are
     * kept by id and only moved.
     */
    drawMarkers() {
      const list = (!this.el.hidden && this.mediaId && markersOf(this.mediaId)) || [];
      const clamp = (f) => Math.min(1, Math.max(0, f));
      const seen = new Set();
      for (const m of list) {
        const f0 = this.fraction(m.start);
        if (f0 === null) break;
        const ranged = isRange(m);
        const f1 = ranged ? this.fraction(m.end) : f0;
        if (f0 > 1 || f1 < 0) continue;
        let el = this.markEls.get(m.id);
        if (!el) {
          el = document.createElement('div');
          el.dataset.markerId = m.id;
          this.markLayer.append(el);
          this.markEls.set(m.id, el);
        }
        el.className = `scrub-marker ${ranged ? 'range' : 'point'} source-${m.source || 'api'}`;
        el.title = `${markerName(m)} · ${fmtClock(m.start, 1)}${ranged ? `–${fmtClock(m.end, 1)}` : ''}`;
        el.style.left = `${(clamp(f0) * 100).toFixed(3)}%`;
        el.style.width = ranged ? `${((clamp(f1) - clamp(f0)) * 100).toFixed(3)}%` : '';
        seen.add(m.id);
      }
      for (const [id, el] of this.markEls) {
        if (seen.has(id)) continue;
        el.remove();
        this.markEls.delete(id);
      }
    }

    /** The marker under recording time `time`: a point within a few pixels, else a range holding it. */
    markerAt(time) {
      const list = (this.mediaId && markersOf(this.mediaId)) || [];
      const range = this.range();
      const width = this.track.clientWidth;
      if (!list.length || !range || !(width > 0)) return null;
      const tolerance = ((range.end - range.start) * MARKER_HIT_PX) / width;
      let best = null;
      for (const m of list) {
        if (isRange(m)) continue;
        const d = Math.abs(m.start - time);
        if (d <= tolerance && (!best || d < Math.abs(best.start - time))) best = m;
      }
      return best || list.find((m) => isRange(m) && m.start <= time && time <= m.end) || null;
    }
  }

  const scrubs = [new Scrub(mainPlayer, $('main-scrub')), new Scrub(previewPlayer, $('preview-scrub'))];

  // ───────────────────────────── markers ─────────────────────────────

  /**
   * Markers of sessions (`GET /{media-id}/markers`), by media id:
   *   { list: markers by start, live, sig, at (end of the last attempt),
   *     loading, again (asked for while loading), error }
   * A marker is the server's: { id, class, start, end (null for a point),
   * duration, planned_duration, start_utc, attributes, source, scte35 }.
   */
  const markerStore = new Map();
  /** Sessions whose markers are kept while nothing shows them. */
  const MARKERS_KEPT = 6;
  let markNowBusy = false;
  let markersDrawn = null; // what the Markers card shows (see renderMarkers)

  const isRange = (m) => m.end !== null && m.end !== undefined && Number.isFinite(m.end) && m.end > m.start;
  const markerName = (m) => (m.class ? `${m.id} · ${m.class}` : m.id);
  const markersOf = (mediaId) => {
    const entry = markerStore.get(mediaId);
    return entry ? entry.list : null;
  };

  /** Asks for a session's markers now (once more after a request under way). */
  function loadMarkers(mediaId) {
    if (!mediaId) return;
    let entry = markerStore.get(mediaId);
    if (!entry) {
      entry = { list: [], live: false, sig: null, at: 0, loading: false, again: false, error: null };
      markerStore.set(mediaId, entry);
    }
    if (entry.loading) {
      entry.again = true;
      return;
    }
    entry.loading = true;
    getJSON(apiUrl(`/${enc(mediaId)}/markers`))
      .then((body) => {
        const list = (Array.isArray(body.markers) ? body.markers : [])
          .filter((m) => m && typeof m.id === 'string' && Number.isFinite(m.start))
          .sort((a, b) => a.start - b.start || a.id.localeCompare(b.id));
        const sig = JSON.stringify(list);
        entry.live = !!body.live;
        entry.error = null;
        if (sig !== entry.sig) {
          entry.sig = sig;
          entry.list = list;
          log(`markers ${mediaId} ${list.length}${list.length ? ` ${list.map((m) => m.id).join(' ')}` : ''}`);
        }
      })
      .catch((e) => {
        // The strips and the clip flow work without markers: said in the
        // Markers card (and once in the log), not as an error.
        if (entry.error !== e.message) log(`markers unavailable ${mediaId}: ${e.message}`);
        entry.error = e.message;
      })
      .finally(() => {
        entry.loading = false;
        entry.at = Date.now();
        renderMarkers();
        for (const s of scrubs) if (s.mediaId === mediaId) s.tick();
        if (entry.again) {
          entry.again = false;
          loadMarkers(mediaId);
        }
      });
  }

  /** A player's playlist brought new or changed EXT-X-DATERANGE tags: markers again. */
  function dateRangesChanged(player) {
    const mediaId =
      (player.anchor && player.anchor.mediaId) ||
      (player === mainPlayer ? state.mainMediaId : null) ||
      (player === previewPlayer ? liveSessionId : null);
    if (mediaId) loadMarkers(mediaId);
  }

  /** The session the Markers card lists: the rewatched one, else the live one. */
  function listedSession() {
    if (state.mainMode === 'replay' && state.mainMediaId) return state.mainMediaId;
    if (previewPlayer.anchor) return previewPlayer.anchor.mediaId;
    if (liveSessionId) return liveSessionId;
    if (state.mainMediaId) return state.mainMediaId;
    return sessions.length ? sessions[sessions.length - 1].media_id : null;
  }

  /** Keeps the markers shown up to date: once for an ended session, every few seconds for a live one. */
  function refreshMarkers() {
    const shown = new Set([listedSession(), ...scrubs.map((s) => s.mediaId)].filter(Boolean));
    const now = Date.now();
    for (const mediaId of shown) {
      const entry = markerStore.get(mediaId);
      // Live by the markers' answer, or by the sessions list (a session
      // another process records, which a server may list as stored).
      const live = entry && (entry.live || sessions.some((x) => x.media_id === mediaId && x.state === 'live'));
      const due =
        !entry ||
        (!entry.loading &&
          (entry.error ? now - entry.at >= MARKERS_RETRY_MS : live && now - entry.at >= MARKERS_EVERY_MS));
      if (due) loadMarkers(mediaId);
    }
    for (const mediaId of markerStore.keys()) {
      if (markerStore.size <= MARKERS_KEPT) break;
      if (!shown.has(mediaId) && !markerStore.get(mediaId).loading) markerStore.delete(mediaId);
    }
    renderMarkers();
  }

  /**
   * The range the server clips for `marker=` alone: a range marker (one
   * with an end: a duration, or a planned one) from its start to its end, a
   * point marker from POINT_BEFORE before it to POINT_AFTER after it. In
   * stops at 0, the session's start; Out of an ended session at its end.
   */
  function markerClipRange(m, mediaId) {
    const ranged = isRange(m);
    let outTime = ranged ? m.end : m.start + POINT_AFTER;
    const s = sessions.find((x) => x.media_id === mediaId);
    if (s && s.state !== 'live' && Number.isFinite(s.duration)) outTime = Math.min(outTime, s.duration);
    return {
      inTime: round3(Math.max(0, m.start - (ranged ? 0 : POINT_BEFORE))),
      outTime: round3(outTime),
    };
  }

  /** The marker In and Out were set from, while they still are its range. */
  function markerOfMarks() {
    const m = state.marker;
    if (!m || m.mediaId !== state.mediaId || m.inTime !== state.inTime || m.outTime !== state.outTime) return null;
    return m;
  }

  /** "Clip this moment": In and Out to the marker's clip range; Clip & Share makes the link. */
  function clipThisMoment(id, mediaId = listedSession()) {
    const m = (markersOf(mediaId) || []).find((x) => x.id === id);
    if (!m) throw new Error(`no marker ${id} in session ${mediaId}`);
    const r = markerClipRange(m, mediaId);
    mark('in', r.inTime, mediaId);
    mark('out', r.outTime, mediaId);
    state.marker = { mediaId, id: m.id, ...r };
    log(`clip marker ${m.id} ${r.inTime.toFixed(3)} ${r.outTime.toFixed(3)} media ${mediaId}`);
    updateMarksUi();
    renderMarkers();
    setStatus(`Marked ${m.id}: ${fmtSeconds(r.inTime)} to ${fmtSeconds(r.outTime)}; press Clip & Share`, 'info');
    return { ...state.marker };
  }

  /** Shows a marker's moment: in a player on its session, else rewatching it from there. */
  function goToMarker(id, mediaId = listedSession()) {
    const m = (markersOf(mediaId) || []).find((x) => x.id === id);
    if (!m) return;
    const players = state.mainMode === 'replay' ? [mainPlayer, previewPlayer] : [previewPlayer, mainPlayer];
    for (const p of players) {
      const a = p.anchor;
      if (!a || a.mediaId !== mediaId || !p.scrub) continue;
      const f = p.scrub.fraction(m.start);
      if (f === null || f < 0 || f > 1) continue;
      p.video.currentTime = a.fragStart + (m.start - a.recStart);
      log(`go to marker ${m.id} on ${p.name}`);
      return;
    }
    log(`go to marker ${m.id} by rewatching ${mediaId}`);
    rewatch(mediaId, m.start);
  }

  /**
   * "Mark now": a marker at the live edge of the stream's live session
   * (`extra` adds to what is sent, e.g. an id). Resolves to the server's
   * answer, or null after showing why not.
   */
  async function markNow(extra = {}) {
    if (!stream || markNowBusy) return null;
    markNowBusy = true;
    renderMarkers();
    const body = { class: MANUAL_MARKER_CLASS, ...extra };
    try {
      const response = await apiFetch(apiUrl(`/${enc(stream)}/markers`), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      const m = answer.marker || {};
      log(`marked now ${m.id} at ${Number(m.start).toFixed(3)} media ${answer.media_id}`);
      setStatus(`Marker ${m.id} added at ${fmtClock(m.start, 1)} of ${answer.media_id}`, 'ok');
      loadMarkers(answer.media_id);
      return answer;
    } catch (e) {
      // The server's own words say what went wrong (an id taken, a stream
      // this server does not record, …); the status is said with them.
      reportError('mark now', `${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`);
      return null;
    } finally {
      markNowBusy = false;
      renderMarkers();
    }
  }

  function markerItem(id) {
    const li = document.createElement('li');
    li.className = 'marker';
    li.dataset.markerId = id;
    li.innerHTML = `
      <span class="marker-swatch" aria-hidden="true"></span>
      <div class="marker-main">
        <div class="marker-line">
          <code class="marker-id"></code>
          <span class="marker-source chip"></span>
        </div>
        <div class="marker-class muted small"></div>
        <div class="marker-meta small">
          <span class="marker-time timecode"></span>
          <span class="marker-duration timecode muted"></span>
          <span class="marker-attrs muted"></span>
        </div>
      </div>
      <div class="marker-actions">
        <button class="btn btn-small marker-go" type="button">▶ Go</button>
        <button class="btn btn-small marker-clip" type="button">✂ Clip this moment</button>
      </div>`;
    li.querySelector('.marker-go').addEventListener('click', () => goToMarker(li.dataset.markerId, li.dataset.mediaId));
    li.querySelector('.marker-clip').addEventListener('click', () => {
      try {
        clipThisMoment(li.dataset.markerId, li.dataset.mediaId);
        // On to the button that makes the clip.
        $('clip-share').focus();
      } catch (e) {
        reportError('clip this moment', e.message);
      }
    });
    return li;
  }

  /** The duration column: `4.000 s`, `planned 30.000 s`, or `point`. */
  function markerDuration(m) {
    if (Number.isFinite(m.duration)) return fmtSeconds(m.duration);
    if (Number.isFinite(m.planned_duration)) return `planned ${fmtSeconds(m.planned_duration)}`;
    return isRange(m) ? fmtSeconds(m.end - m.start) : 'point';
  }

  /** The Markers card: the listed session's markers, and Mark now while something is live. */
  function renderMarkers() {
    const mediaId = listedSession();
    const entry = mediaId ? markerStore.get(mediaId) : null;
    const chosen = markerOfMarks();
    const now = $('mark-now');
    now.disabled = !stream || !liveSessionId || markNowBusy;
    now.title = liveSessionId
      ? `Add a marker at the live edge of ${liveSessionId} (key M)`
      : 'Nothing is recorded live now: markers are added to a live session';
    const sig = JSON.stringify([mediaId, entry && entry.sig, entry && entry.error, chosen && chosen.id]);
    if (sig === markersDrawn) return;
    markersDrawn = sig;
    $('markers-session').textContent = mediaId || '';
    const list = (entry && entry.list) || [];
    const ul = $('markers');
    const byId = new Map([...ul.children].map((li) => [li.dataset.markerId, li]));
    const keep = new Set();
    list.forEach((m, i) => {
      const li = byId.get(m.id) || markerItem(m.id);
      li.dataset.mediaId = mediaId;
      li.classList.toggle('range', isRange(m));
      li.classList.toggle('chosen', !!chosen && chosen.id === m.id);
      li.querySelector('.marker-id').textContent = m.id;
      const source = li.querySelector('.marker-source');
      const event = m.scte35 && m.scte35.event_id !== undefined ? ` #${m.scte35.event_id}` : '';
      source.textContent = m.scte35 ? `SCTE-35${event}` : m.source || 'api';
      source.className = `marker-source chip source-${m.source || 'api'}`;
      source.title = `Added by ${m.source || 'api'}`;
      li.querySelector('.marker-class').textContent = m.class || 'no class';
      const time = li.querySelector('.marker-time');
      time.textContent = fmtClock(m.start, 3);
      time.title = `${fmtSeconds(m.start)} of the recording${m.start_utc ? ` · ${fmtUtc(m.start_utc)}` : ''}`;
      li.querySelector('.marker-duration').textContent = markerDuration(m);
      const attrs = Object.entries(m.attributes || {});
      li.querySelector('.marker-attrs').textContent = attrs.map(([k, v]) => `${k}=${v}`).join(' ');
      li.querySelector('.marker-go').setAttribute('aria-label', `Go to marker ${m.id}`);
      li.querySelector('.marker-go').title = `Show marker ${m.id} in a player`;
      const r = markerClipRange(m, mediaId);
      const clip = li.querySelector('.marker-clip');
      clip.setAttribute('aria-label', `Clip this moment: marker ${m.id}`);
      clip.title = `Set In and Out to ${fmtSeconds(r.inTime)} – ${fmtSeconds(r.outTime)}, then Clip & Share`;
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
      keep.add(m.id);
    });
    for (const li of [...ul.children]) if (!keep.has(li.dataset.markerId)) li.remove();
    const empty = $('markers-empty');
    empty.hidden = list.length > 0;
    empty.textContent = !mediaId
      ? 'No session yet.'
      : entry && entry.error
        ? `Markers unavailable: ${entry.error}`
        : entry && entry.sig !== null
          ? 'No markers in this session.'
          : 'Loading markers…';
  }

  // ───────────────────────────── marking ─────────────────────────────

  const markSource = () => {
    const checked = document.querySelector('input[name="mark-on"]:checked');
    return checked ? checked.value : 'preview';
  };

  /** The player marks are taken from, per the "mark on" toggle. */
  const markPlayer = () => (markSource() === 'main' ? mainPlayer : previewPlayer);

  /** Why the chosen player has no recording time now (or null if it has). */
  function unmarkableReason() {
    const p = markPlayer();
    if (p.anchor) return null;
    if (p === mainPlayer) {
      return state.mainMode === 'live'
        ? 'the main player shows the live window, which has no recording-time reference: mark on the preview, or Rewatch a session'
        : 'the replay is not loaded yet';
    }
    return 'the preview is not loaded yet';
  }

  /** The session a mark given in seconds belongs to. */
  function defaultMediaId() {
    const p = markPlayer();
    if (p.anchor) return p.anchor.mediaId;
    if (p === mainPlayer && state.mainMode === 'replay') return state.mainMediaId;
    if (state.mediaId) return state.mediaId;
    if (previewPlayer.anchor) return previewPlayer.anchor.mediaId;
    const live = sessions.find((s) => s.state === 'live');
    return live ? live.media_id : sessions.length ? sessions[sessions.length - 1].media_id : null;
  }

  /**
   * Sets the In or Out mark. `seconds` (recording time) and `mediaId` are
   * optional: without them, the current position of the chosen player and
   * its session. Returns the mark; throws an Error with the reason.
   */
  function mark(which, seconds, mediaId) {
    let time;
    let media;
    if (seconds === undefined || seconds === null) {
      const reason = unmarkableReason();
      if (reason) throw new Error(reason);
      const p = markPlayer();
      time = p.recordingTime();
      media = p.anchor.mediaId;
    } else {
      time = Number(seconds);
      media = mediaId || defaultMediaId();
    }
    if (!Number.isFinite(time) || time < 0) throw new Error(`not a recording time: ${seconds}`);
    if (!media) throw new Error('no session to clip yet');
    time = round3(time);

    // Marks belong to one session: marking another session starts over.
    if (state.mediaId && state.mediaId !== media && (state.inTime !== null || state.outTime !== null)) {
      state.inTime = null;
      state.outTime = null;
      setStatus(`Marks reset: now marking session ${media}`, 'info');
    }
    state.mediaId = media;
    if (which === 'in') state.inTime = time;
    else state.outTime = time;
    log(`mark-${which} ${time.toFixed(3)} media ${media}`);
    updateMarksUi();
    markResultStale();
    return time;
  }

  /** Marks from the UI: errors go to the status line. */
  function markFromUi(which) {
    try {
      mark(which);
    } catch (e) {
      reportError(`mark ${which}`, e.message);
    }
  }

  /** Whether the marks make a clip; `message` says why not. */
  function validateMarks() {
    const { inTime, outTime, mediaId } = state;
    if (!mediaId || inTime === null || outTime === null) {
      return { ok: false, message: 'Mark In and Mark Out to make a clip.' };
    }
    if (!(outTime > inTime)) return { ok: false, message: 'Out must be after In.' };
    const duration = round3(outTime - inTime);
    if (duration > MAX_CLIP_SECONDS) {
      return {
        ok: false,
        message: `The clip is ${duration.toFixed(3)} s; at most ${MAX_CLIP_SECONDS} s are allowed.`,
      };
    }
    const marker = markerOfMarks();
    const of = marker ? ` (marker ${marker.id})` : '';
    return { ok: true, message: `Ready: ${duration.toFixed(3)} s of ${mediaId}${of}.`, duration };
  }

  function updateMarksUi() {
    const { inTime, outTime, mediaId } = state;
    const setTime = (id, clockId, t) => {
      const el = $(id);
      el.textContent = fmtSeconds(t === null ? NaN : t);
      if (t === null) delete el.dataset.seconds;
      else el.dataset.seconds = t.toFixed(3);
      $(clockId).textContent = t === null ? '' : fmtClock(t, 3);
    };
    setTime('in-time', 'in-clock', inTime);
    setTime('out-time', 'out-clock', outTime);
    $('clip-media').textContent = mediaId || '—';
    const haveBoth = inTime !== null && outTime !== null;
    $('clip-duration').textContent = haveBoth ? fmtSeconds(round3(outTime - inTime)) : '—';
    const v = validateMarks();
    const msg = $('clip-validation');
    msg.textContent = v.message;
    msg.className = `validation ${v.ok ? 'ok' : haveBoth ? 'bad' : ''}`;
    $('clip-share').disabled = !v.ok || clipBusy;
  }

  /** Shows the current recording time of the marking player. */
  function updatePosition() {
    const p = markPlayer();
    const t = p.recordingTime();
    const el = $('position');
    const hint = $('position-hint');
    if (t === null) {
      el.textContent = '—';
      hint.textContent = unmarkableReason() || '';
    } else {
      el.textContent = `${fmtSeconds(t)}  ${fmtClock(t, 3)}`;
      hint.textContent = p.anchor.mediaId;
    }
    const markable = t !== null;
    $('mark-in').disabled = !markable;
    $('mark-out').disabled = !markable;
  }

  // ───────────────────────────── clip & share ─────────────────────────────

  function markResultStale() {
    if (!$('clip-result').hidden) $('clip-stale').hidden = false;
  }

  /**
   * Asks the API for the clip manifest of the marked range (which reports
   * range errors as JSON, and waits at the live edge), then shows the links
   * and plays the clip. Marks set by "Clip this moment" (and not changed
   * since) ask by `marker=` instead of time and duration: the server cuts
   * the same range, and the link names the moment. Returns
   * { manifestUrl, mp4Url, filename, posterUrl, marker, media, query,
   * duration } or null (`query`: the range as asked, for the export row).
   */
  async function clipAndShare() {
    const v = validateMarks();
    if (!v.ok) {
      reportError('clip', v.message);
      return null;
    }
    const media = state.mediaId;
    const time = state.inTime.toFixed(3); // recording time
    const duration = v.duration.toFixed(3);
    const marker = markerOfMarks();
    let query = { time, duration };
    let filename = `clip-${media}-${time}.mp4`;
    if (marker) {
      // The server's own range for the marker: the marks are that range.
      query = { marker: marker.id };
      filename = `clip-${media}-${marker.id}.mp4`;
    }
    const manifestUrl = apiUrl(`/${enc(media)}/manifest/clip.m3u8`, query);
    const mp4Url = apiUrl(`/${enc(media)}/clip.mp4`, { ...query, filename });

    clipBusy = true;
    updateMarksUi();
    const what = marker ? ` (marker ${marker.id})` : '';
    setStatus(`Making the clip: ${duration} s from ${time} s of ${media}${what}…`, 'info');
    try {
      await (await apiFetch(manifestUrl)).text();
    } catch (e) {
      reportError('clip', e.message);
      return null;
    } finally {
      clipBusy = false;
      updateMarksUi();
    }

    const link = $('clip-link');
    link.href = manifestUrl;
    link.textContent = manifestUrl;
    const mp4 = $('mp4-link');
    mp4.href = mp4Url;
    mp4.setAttribute('download', filename);
    $('mp4-name').textContent = filename;
    $('clip-stale').hidden = true;
    $('clip-result').hidden = false;
    // The clip's first frame stands for it until it plays.
    const posterUrl = apiUrl(`/${enc(media)}/thumbnails/thumbnail.jpg`, { time, width: POSTER_WIDTH });
    $('clip-player').poster = posterUrl;
    state.lastClip = {
      manifestUrl,
      mp4Url,
      filename,
      posterUrl,
      marker: marker ? marker.id : null,
      media,
      query,
      duration: v.duration,
    };
    log(`clip-link ${manifestUrl}`);
    log(`mp4-link ${mp4Url}`);
    log(`poster ${posterUrl}`);
    setStatus(`Clip ready: ${duration} s from ${time} s${what}`, 'ok');
    clipPlayer.load(manifestUrl);
    resetExport();
    loadExportProfiles(media);
    return { ...state.lastClip };
  }

  async function copyLink() {
    const url = $('clip-link').href;
    try {
      await navigator.clipboard.writeText(url);
    } catch (_) {
      // No async clipboard (insecure origin, no permission): the old way.
      const ta = document.createElement('textarea');
      ta.value = url;
      ta.setAttribute('readonly', '');
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      const ok = document.execCommand && document.execCommand('copy');
      ta.remove();
      if (!ok) {
        reportError('copy', 'the clipboard is not available; copy the link by hand');
        return;
      }
    }
    log(`copied ${url}`);
    setStatus('Clip link copied', 'ok');
  }

  // ───────────────────────────── export ─────────────────────────────

  /** How often an export's status is asked for while it runs. */
  const EXPORT_POLL_MS = 500;
  /** Status requests in a row that may fail on the network before an export is given up on. */
  const EXPORT_POLL_RETRIES = 5;

  let exportProfiles = null; // the `profiles` of GET /{media}/exports, once loaded
  let exportProfilesMedia = null; // the session they were asked of
  let exportProfilesLoading = null; // the request under way
  let exportBusy = false; // an export is being sent or followed
  let exportRun = 0; // bumped by each export and each new clip: an older follow stops

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** A profile as the picker shows it: `vertical 1080×1920 (crop)`. */
  const profileLabel = (p) => `${p.name} ${p.width}×${p.height} (${p.fit})`;

  /** Where the crop is taken, in words: left, center, right, or how far across. */
  function cropLabel(x) {
    if (x <= 0.001) return 'left';
    if (Math.abs(x - 0.5) < 0.001) return 'center';
    if (x >= 0.999) return 'right';
    return `${Math.round(x * 100)}% across`;
  }

  function chosenProfile() {
    const name = $('export-profile').value;
    return (exportProfiles || []).find((p) => p.name === name) || null;
  }

  function setExportMessage(text, level = '') {
    const el = $('export-message');
    el.textContent = text;
    el.className = `validation ${level}`;
  }

  /** The row's controls for the chosen shape: the crop control only for a crop. */
  function updateExportUi() {
    const p = chosenProfile();
    $('export-crop-field').hidden = !(p && p.fit === 'crop');
    const crop = $('export-crop');
    const where = cropLabel(Number(crop.value));
    $('export-crop-value').textContent = where;
    crop.setAttribute('aria-valuetext', where);
    $('export-profile').disabled = exportBusy || !exportProfiles || exportProfiles.length === 0;
    crop.disabled = exportBusy;
    $('export-start').disabled = exportBusy || !p || !state.lastClip;
  }

  /** Fills the shape picker from `GET /{media}/exports` (once per session). */
  function loadExportProfiles(media) {
    if (exportProfiles && exportProfilesMedia === media) {
      updateExportUi();
      return Promise.resolve(exportProfiles);
    }
    if (exportProfilesLoading && exportProfilesLoading.media === media) return exportProfilesLoading.promise;
    const select = $('export-profile');
    const option = (value, text, title = '') => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = text;
      if (title) o.title = title;
      return o;
    };
    const promise = (async () => {
      try {
        const body = await getJSON(apiUrl(`/${enc(media)}/exports`));
        const list = Array.isArray(body.profiles) ? body.profiles : [];
        const keep = select.value;
        select.replaceChildren(
          ...list.map((p) =>
            option(
              p.name,
              profileLabel(p),
              `${p.video_kbps} kb/s video, ${p.audio_kbps} kb/s audio; clips of at most ${p.max_duration} s`,
            ),
          ),
        );
        if (list.length === 0) select.replaceChildren(option('', 'No shapes'));
        else if (list.some((p) => p.name === keep)) select.value = keep;
        exportProfiles = list;
        exportProfilesMedia = media;
        log(`export profiles ${list.map((p) => p.name).join(' ')}`);
        if (list.length === 0) setExportMessage('This server has no export profiles.');
      } catch (e) {
        exportProfiles = null;
        exportProfilesMedia = null;
        select.replaceChildren(option('', 'Unavailable'));
        const why = `${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`;
        log(`export profiles unavailable: ${why}`);
        setExportMessage(`Export shapes unavailable: ${why}`, 'bad');
      } finally {
        exportProfilesLoading = null;
        updateExportUi();
      }
      return exportProfiles;
    })();
    exportProfilesLoading = { media, promise };
    return promise;
  }

  /** A new clip: the row starts over (an export under way is no longer followed). */
  function resetExport() {
    exportRun += 1;
    exportBusy = false;
    state.lastExport = null;
    $('export-follow').hidden = true;
    $('export-link').hidden = true;
    setExportMessage('');
    updateExportUi();
  }

  const EXPORT_WORDS = { sending: 'sending', queued: 'queued', running: 'exporting', done: 'done', failed: 'failed' };

  /** The progress bar (and its aria values), the state, and the link once done. */
  function showExport(ex) {
    $('export-follow').hidden = false;
    const pct = Math.round(ex.progress * 100);
    const words = ex.state === 'running' ? `exporting ${pct}%` : EXPORT_WORDS[ex.state] || ex.state;
    const bar = $('export-progress');
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-valuetext', words);
    bar.className = `progress ${ex.state}`;
    bar.querySelector('.progress-fill').style.width = `${pct}%`;
    const size = Number.isFinite(ex.bytes) ? ` · ${fmtBytes(ex.bytes)}` : '';
    $('export-state').textContent = `${ex.profile}: ${words}${size}`;
    const link = $('export-link');
    link.hidden = ex.state !== 'done';
    if (ex.state === 'done') {
      link.href = ex.fileUrl;
      link.setAttribute('download', ex.filename);
      link.textContent = `⬇ Download ${ex.profile} MP4`;
      link.title = ex.filename;
    }
  }

  /**
   * Export: asks the server to re-encode the range of the last clip (by its
   * `marker=` when it was made from a marker, else its time and duration)
   * to the chosen shape (`POST /{media}/exports?…&profile=[&crop_x=]`),
   * follows it every EXPORT_POLL_MS with a progress bar, and offers the file
   * once done. Resolves to the file's URL, or null (failed, or a newer clip
   * took the row).
   */
  async function exportClip() {
    const clip = state.lastClip;
    const p = chosenProfile();
    if (exportBusy) return null;
    if (!clip || !p) {
      reportError('export', clip ? 'choose a shape to export to' : 'make a clip with Clip & Share first');
      return null;
    }
    const cropX = p.fit === 'crop' ? round3(Number($('export-crop').value)) : null;
    const run = ++exportRun;
    exportBusy = true;
    const filename = clip.filename.replace(/\.mp4$/, `-${p.name}.mp4`);
    const ex = { id: null, profile: p.name, cropX, state: 'sending', progress: 0, fileUrl: null, filename, error: null };
    state.lastExport = ex;
    updateExportUi();
    showExport(ex);
    const of = clip.marker ? `marker ${clip.marker}` : `${clip.query.duration} s from ${clip.query.time} s`;
    const where = cropX === null ? '' : `, crop ${cropLabel(cropX)}`;
    setExportMessage(`Exporting ${of} of ${clip.media} to ${profileLabel(p)}${where}…`);
    try {
      const postUrl = apiUrl(`/${enc(clip.media)}/exports`, { ...clip.query, profile: p.name, crop_x: cropX });
      log(`export post ${postUrl}`);
      const job = await (await apiFetch(postUrl, { method: 'POST' })).json();
      ex.id = job.export_id;
      ex.state = 'queued';
      const statusUrl = apiUrl(job.status);
      const fileUrl = apiUrl(job.file);
      let misses = 0;
      for (;;) {
        if (run !== exportRun) return null;
        let s;
        try {
          s = await getJSON(statusUrl);
          misses = 0;
        } catch (e) {
          // A network hiccup is waited out; an answer from the server is not.
          if (e.kind === 'network' && ++misses <= EXPORT_POLL_RETRIES) {
            await sleep(EXPORT_POLL_MS);
            continue;
          }
          throw e;
        }
        if (run !== exportRun) return null;
        ex.state = s.state;
        ex.progress = Math.min(1, Math.max(0, Number(s.progress) || 0));
        log(`export ${ex.id} ${s.state} ${ex.progress.toFixed(3)}`);
        if (s.state === 'failed') throw new ApiError(s.error || 'the export failed', s.status || 0, s.kind || '');
        if (s.state === 'done') {
          ex.bytes = s.bytes;
          ex.fileUrl = fileUrl;
          showExport(ex);
          break;
        }
        showExport(ex);
        await sleep(EXPORT_POLL_MS);
      }
      log(`export-link ${fileUrl}`);
      setExportMessage(`Export ready: ${filename}`, 'ok');
      setStatus(`Export ready: ${profileLabel(p)}, ${fmtBytes(ex.bytes)}`, 'ok');
      return fileUrl;
    } catch (e) {
      if (run !== exportRun) return null;
      ex.state = 'failed';
      ex.error = `${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`;
      showExport(ex);
      setExportMessage(`Export to ${p.name} failed: ${ex.error}`, 'bad');
      reportError('export', ex.error);
      return null;
    } finally {
      if (run === exportRun) {
        exportBusy = false;
        updateExportUi();
      }
    }
  }

  // ───────────────────────────── sessions ─────────────────────────────

  let sessionsError = null;

  async function refreshSessions() {
    try {
      const body = await getJSON(apiUrl(`/${enc(stream)}/sessions`));
      sessionsError = null;
      renderSessions((body.sessions || []).filter((s) => s.state !== 'deleted'));
      $('sessions-updated').textContent = `updated ${nowUtc()} UTC`;
    } catch (e) {
      // Once per distinct error, not every 10 s.
      if (sessionsError !== e.message) reportError('sessions', e.message);
      sessionsError = e.message;
    }
  }

  function sessionItem(mediaId) {
    const li = document.createElement('li');
    li.className = 'session';
    li.dataset.mediaId = mediaId;
    li.innerHTML = `
      <div class="session-main">
        <div class="session-line">
          <span class="session-start timecode"></span>
          <span class="session-state chip"></span>
        </div>
        <div class="session-meta muted small">
          <span class="session-duration timecode"></span>
          <span class="session-size"></span>
        </div>
        <code class="session-id media-id"></code>
      </div>
      <button class="btn btn-small rewatch" type="button">▶ Rewatch</button>`;
    li.querySelector('.rewatch').addEventListener('click', () => rewatch(li.dataset.mediaId));
    return li;
  }

  function renderSessions(list) {
    sessions = list;
    const ul = $('sessions');
    const newestFirst = [...list].reverse(); // sessions.json lists newest last
    const keep = new Set();
    const byId = new Map([...ul.children].map((li) => [li.dataset.mediaId, li]));
    newestFirst.forEach((s, i) => {
      const li = byId.get(s.media_id) || sessionItem(s.media_id);
      li.querySelector('.session-start').textContent = fmtUtc(s.start_utc);
      const st = li.querySelector('.session-state');
      st.textContent = s.state;
      st.className = `session-state chip chip-${s.state}`;
      li.querySelector('.session-duration').textContent = fmtClock(s.duration);
      li.querySelector('.session-size').textContent =
        `${s.segments} segments · ${fmtBytes(s.bytes)}` + (s.end_utc ? ` · ended ${fmtUtc(s.end_utc)}` : '');
      li.querySelector('.session-id').textContent = s.media_id;
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
      keep.add(s.media_id);
    });
    for (const li of [...ul.children]) if (!keep.has(li.dataset.mediaId)) li.remove();
    $('sessions-empty').hidden = newestFirst.length > 0;
    updateSessionHighlights();
    updateMainUi();

    // LIVE badge, and following the stream when its live session changes.
    const live = list.find((s) => s.state === 'live');
    const liveId = live ? live.media_id : null;
    const badge = $('live-badge');
    badge.textContent = liveId ? 'LIVE' : 'OFFLINE';
    badge.className = `badge live-badge ${liveId ? 'on' : 'off'}`;
    if (liveSessionId !== undefined && liveId !== liveSessionId) {
      log(`live session ${liveSessionId || 'none'} -> ${liveId || 'none'}`);
      // The stream URL now means another playlist (a new live window, or
      // the ended session's replay): load it again.
      if (state.mainMode === 'live') mainPlayer.reload();
      if (liveId && previewPlayer.anchor && previewPlayer.anchor.mediaId !== liveId) loadPreview();
    }
    liveSessionId = liveId;
    refreshMarkers();
  }

  function updateSessionHighlights() {
    for (const li of $('sessions').children) {
      li.classList.toggle('active', state.mainMode === 'replay' && li.dataset.mediaId === state.mainMediaId);
    }
  }

  // ───────────────────────────── side media ─────────────────────────────

  /** Latest thumbnail: preloaded, then swapped in (no flicker); hidden on 404. */
  function refreshThumb() {
    const url = `${THUMB_URL}?t=${Date.now()}`;
    const probe = new Image();
    probe.onload = () => {
      $('thumb').src = url;
      $('thumb-panel').hidden = false;
      $('thumb-updated').textContent = `${nowUtc()} UTC`;
    };
    probe.onerror = () => {
      $('thumb-panel').hidden = true;
    };
    probe.src = url;
  }

  let motionSignature = null;

  /**
   * Latest motion clip: every 15 s, reload it if it changed (judged by the
   * HEAD validators when the server gives them, else always); hidden on 404.
   */
  async function refreshMotion() {
    const video = $('motion');
    let signature = '';
    try {
      const r = await fetch(MOTION_URL, { method: 'HEAD', cache: 'no-store' });
      if (r.status === 404 || r.status === 410) {
        $('motion-panel').hidden = true;
        motionSignature = null;
        return;
      }
      if (r.ok) {
        signature = ['etag', 'last-modified', 'content-length'].map((h) => r.headers.get(h) || '').join('|');
      }
    } catch (_) {
      /* HEAD not possible: just reload */
    }
    if (signature && signature !== '||' && signature === motionSignature && !$('motion-panel').hidden) return;
    motionSignature = signature;
    video.src = `${MOTION_URL}?t=${Date.now()}`;
    video.play().catch(() => {});
  }

  function setupMotion() {
    const video = $('motion');
    video.addEventListener('loadeddata', () => {
      $('motion-panel').hidden = false;
      $('motion-updated').textContent = `${nowUtc()} UTC`;
    });
    video.addEventListener('error', () => {
      $('motion-panel').hidden = true;
      motionSignature = null;
    });
  }

  /** `HH:MM:SS.mmm` or `MM:SS.mmm` → seconds. */
  function parseVttTime(s) {
    const parts = s.trim().split(':').map(Number);
    if (parts.some((x) => !Number.isFinite(x))) return NaN;
    return parts.reduce((acc, x) => acc * 60 + x, 0);
  }

  /** Cues of a storyboard VTT: { start, sprite (absolute URL), x, y, w, h }. */
  function parseStoryboard(text, base) {
    const cues = [];
    for (const block of text.replace(/\r/g, '').split(/\n\n+/)) {
      const lines = block.split('\n');
      const i = lines.findIndex((l) => l.includes('-->'));
      if (i < 0 || !lines[i + 1]) continue;
      const m = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)\s*$/.exec(lines[i + 1].trim());
      if (!m) continue;
      cues.push({
        start: parseVttTime(lines[i].split('-->')[0]),
        sprite: new URL(m[1], base).href,
        x: +m[2],
        y: +m[3],
        w: +m[4],
        h: +m[5],
      });
    }
    return cues;
  }

  /** The last storyboard tiles, drawn from the sprite; hidden without one. */
  async function refreshStoryboard() {
    const panel = $('storyboard-panel');
    try {
      const r = await fetch(STORYBOARD_VTT_URL, { cache: 'no-store' });
      if (!r.ok) {
        panel.hidden = true;
        return;
      }
      const cues = parseStoryboard(await r.text(), new URL(STORYBOARD_VTT_URL, location.origin).href).slice(-6);
      if (!cues.length) {
        panel.hidden = true;
        return;
      }
      const sprite = new Image();
      sprite.src = `${cues[0].sprite}${cues[0].sprite.includes('?') ? '&' : '?'}t=${Date.now()}`;
      await sprite.decode();
      const box = $('storyboard');
      box.textContent = '';
      for (const c of cues) {
        const fig = document.createElement('figure');
        const canvas = document.createElement('canvas');
        canvas.width = c.w;
        canvas.height = c.h;
        canvas.getContext('2d').drawImage(sprite, c.x, c.y, c.w, c.h, 0, 0, c.w, c.h);
        const cap = document.createElement('figcaption');
        cap.textContent = fmtClock(c.start);
        fig.append(canvas, cap);
        box.append(fig);
      }
      panel.hidden = false;
    } catch (_) {
      panel.hidden = true;
    }
  }

  // ───────────────────────────── start ─────────────────────────────

  /** The stream: `?stream=`, else the first stream of `GET /`. */
  async function resolveStream() {
    let index = null;
    try {
      index = await getJSON(apiUrl('/'));
    } catch (e) {
      if (!params.get('stream')) throw e;
      log(`index unavailable: ${e.message}`);
    }
    const streams = (index && index.streams) || [];
    const chosen = params.get('stream') || streams[0];
    if (streams.length > 1 || (chosen && streams.length && !streams.includes(chosen))) {
      const select = $('stream-select');
      const names = streams.includes(chosen) ? streams : [chosen, ...streams];
      select.innerHTML = '';
      for (const name of names) {
        const opt = document.createElement('option');
        opt.value = name;
        opt.textContent = name;
        opt.selected = name === chosen;
        select.append(opt);
      }
      select.addEventListener('change', () => {
        const p = new URLSearchParams(location.search);
        p.set('stream', select.value);
        location.search = p.toString();
      });
      $('stream-picker').hidden = false;
    }
    return chosen || null;
  }

  function bindUi() {
    $('back-to-live').addEventListener('click', playLive);
    $('preview-minutes').addEventListener('change', loadPreview);
    $('preview-reload').addEventListener('click', loadPreview);
    $('mark-in').addEventListener('click', () => markFromUi('in'));
    $('mark-out').addEventListener('click', () => markFromUi('out'));
    $('clip-share').addEventListener('click', () => clipAndShare());
    $('copy-link').addEventListener('click', copyLink);
    $('mark-now').addEventListener('click', () => markNow());
    $('export-start').addEventListener('click', () => exportClip());
    $('export-profile').addEventListener('change', updateExportUi);
    $('export-crop').addEventListener('input', updateExportUi);
    $('status').addEventListener('click', () => {
      $('status').textContent = 'Ready';
      $('status').className = 'status idle';
    });
    for (const radio of document.querySelectorAll('input[name="mark-on"]')) {
      radio.addEventListener('change', () => {
        log(`mark on ${markSource()}`);
        updatePosition();
      });
    }
    // I / O mark the current position (not while typing in a field).
    document.addEventListener('keydown', (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const tag = (e.target && e.target.tagName) || '';
      if (/^(INPUT|SELECT|TEXTAREA)$/.test(tag)) return;
      if (e.key === 'i' || e.key === 'I') markFromUi('in');
      else if (e.key === 'o' || e.key === 'O') markFromUi('out');
      else if ((e.key === 'm' || e.key === 'M') && !$('mark-now').disabled) markNow();
    });
    const tick = () => {
      $('utc-clock').textContent = `${nowUtc()} UTC`;
    };
    tick();
    setInterval(tick, 1000);
    setInterval(updatePosition, 250);
    setInterval(() => {
      for (const s of scrubs) s.tick();
    }, 250);
    setInterval(updateLatency, LATENCY_EVERY_MS);
    setInterval(refreshMarkers, 1000);
    updateMarksUi();
    updatePosition();
    updateExportUi();
  }

  async function start() {
    bindUi();
    setupMotion();
    // Side media does not depend on the stream.
    refreshThumb();
    setInterval(refreshThumb, THUMB_EVERY_MS);
    refreshMotion();
    setInterval(refreshMotion, MOTION_EVERY_MS);
    refreshStoryboard();
    setInterval(refreshStoryboard, STORYBOARD_EVERY_MS);

    // The stream (retried until the API answers with one).
    for (;;) {
      try {
        stream = await resolveStream();
        if (stream) break;
        reportError('streams', 'no stream is served here yet');
      } catch (e) {
        reportError('streams', e.message);
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
    state.stream = stream;
    $('stream-name').textContent = stream;
    document.title = `${stream} · Live Replay`;
    log(`stream ${stream}`);
    setStatus(`Watching stream ${stream}`, 'ok');

    playLive();
    loadPreview();
    await refreshSessions();
    setInterval(refreshSessions, SESSIONS_EVERY_MS);
  }

  // ───────────────────────────── test hooks ─────────────────────────────

  /**
   * For automated tests (and the console):
   *   liveclip.markIn(12.345)   set In to recording time 12.345 s
   *   liveclip.markOut(17.845)  set Out; both return the mark, throw on error
   *   liveclip.markIn()         mark at the chosen player's position
   *   (an optional 2nd argument names the session; default: the session of
   *    the chosen player, i.e. the preview's stream-media-id)
   *   liveclip.clip()           Clip & Share; resolves to the URLs or null
   *   liveclip.state            { mediaId, inTime, outTime, previewStart, … }
   *   liveclip.storyboard(id)   the loaded storyboard of a session (or null)
   *   liveclip.markers(id)      the loaded markers of a session (default: the listed one)
   *   liveclip.clipMarker(m)    "Clip this moment" on marker id m (of the listed session)
   *   liveclip.markNow(extra)   "Mark now" (extra: more of the POST body); resolves to the answer or null
   *   liveclip.dateRanges(p)    the EXT-X-DATERANGE tags hls.js parsed in player p ('main', 'preview')
   *   liveclip.exportProfiles() the shapes of the picker (GET /{media}/exports), null until loaded
   *   liveclip.exportClip(profile, cropX)
   *                             Export of the last clip with the row's controls set to that shape
   *                             (and crop position 0..1, in the slider's 5 % steps); resolves to
   *                             the file's URL or null. State in liveclip.state.lastExport.
   */
  window.liveclip = {
    state,
    markIn(seconds, mediaId) {
      try {
        return mark('in', seconds, mediaId);
      } catch (e) {
        reportError('mark in', e.message);
        throw e;
      }
    },
    markOut(seconds, mediaId) {
      try {
        return mark('out', seconds, mediaId);
      } catch (e) {
        reportError('mark out', e.message);
        throw e;
      }
    },
    clip: clipAndShare,
    /** Recording time of the chosen player's position (null if unknown). */
    recordingTime: () => markPlayer().recordingTime(),
    rewatch: (mediaId) => rewatch(mediaId),
    live: () => playLive(),
    players: { main: mainPlayer, preview: previewPlayer, clip: clipPlayer },
    /** The loaded storyboard of a session (see `storyboards`), or null. */
    storyboard: (mediaId) => {
      const entry = storyboards.get(mediaId);
      return (entry && entry.board) || null;
    },
    markers: (mediaId) => markersOf(mediaId || listedSession()),
    listedSession: () => listedSession(),
    clipMarker(id, mediaId) {
      try {
        return clipThisMoment(id, mediaId);
      } catch (e) {
        reportError('clip this moment', e.message);
        throw e;
      }
    },
    markNow: (extra) => markNow(extra),
    dateRanges: (name = 'main') => ({ main: mainPlayer, preview: previewPlayer, clip: clipPlayer })[name].dateRanges(),
    exportProfiles: () => (exportProfiles ? exportProfiles.map((p) => ({ ...p })) : null),
    async exportClip(profile, cropX) {
      if (state.lastClip && !exportProfiles) await loadExportProfiles(state.lastClip.media);
      if (profile !== undefined) {
        if (!(exportProfiles || []).some((p) => p.name === profile)) {
          reportError('export', `no shape ${profile} to export to`);
          return null;
        }
        $('export-profile').value = profile;
      }
      if (cropX !== undefined && cropX !== null) $('export-crop').value = String(cropX);
      updateExportUi();
      return exportClip();
    },
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
