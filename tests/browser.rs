// SPDX-License-Identifier: MPL-2.0
//! What browsers see: a recording made by hlsclipsink plays in headless
//! Chromium through hls.js (Media Source Extensions), without gaps, to its
//! end; clip manifests of an open-GOP feed play in hls.js, Shaka Player and
//! video.js; a ladder switches levels; a low-latency live stream plays in
//! hls.js's low-latency mode within 2 s of live.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::numbered::{FPS, H, W, feed_numbered};
use common::*;
use gst::prelude::*;

const PAGE: &str = r#"<!doctype html><html><body>
<video id=v muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
const log = (m) => console.log("liveclip: " + m);
const v = document.getElementById('v');
const hls = new Hls();
hls.on(Hls.Events.ERROR, (e, d) => log("error " + d.type + " " + d.details + " fatal=" + d.fatal));
hls.loadSource("/rec/replay.m3u8");
hls.attachMedia(v);
v.addEventListener('ended', () => {
  const q = v.getVideoPlaybackQuality();
  const b = v.buffered;
  const ranges = [];
  for (let i = 0; i < b.length; i++) ranges.push(b.start(i).toFixed(3) + "-" + b.end(i).toFixed(3));
  log("ended at " + v.currentTime.toFixed(3) + " frames " + q.totalVideoFrames +
      " width " + v.videoWidth + " buffered " + ranges.join(","));
});
</script></body></html>"#;

/// A minimal file server for the page, hls.js and the session directory.
fn serve(session: PathBuf, hlsjs: PathBuf) -> u16 {
    serve_page(session, hlsjs, PAGE.to_string())
}

fn serve_page(session: PathBuf, hlsjs: PathBuf, page: String) -> u16 {
    serve_scripts(session, vec![("/hls.min.js".into(), hlsjs)], page)
}

/// The web player library `file` under web/node_modules.
fn player(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("web/node_modules")
        .join(file);
    assert!(
        path.exists(),
        "{file} is installed by scripts/deps.sh (npm ci in web/)"
    );
    path
}

/// Serves `page` at `/`, each script of `scripts` at its path, and the
/// session directory under `/rec/`.
fn serve_scripts(session: PathBuf, scripts: Vec<(String, PathBuf)>, page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let session = session.clone();
            let scripts = scripts.clone();
            let page = page.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                // Drain the headers.
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (body, kind) = match path.as_str() {
                    "/" => (Some(page.as_bytes().to_vec()), "text/html"),
                    p if scripts.iter().any(|(s, _)| s == p) => {
                        let file = &scripts.iter().find(|(s, _)| s == p).unwrap().1;
                        (std::fs::read(file).ok(), "text/javascript")
                    }
                    p if p.starts_with("/rec/") && !p.contains("..") => {
                        let name = &p["/rec/".len()..];
                        let kind = if name.ends_with(".m3u8") {
                            "application/vnd.apple.mpegurl"
                        } else {
                            "video/mp4"
                        };
                        (std::fs::read(session.join(name)).ok(), kind)
                    }
                    _ => (None, "text/plain"),
                };
                let _ = match body {
                    Some(b) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                b.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(&b)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            });
        }
    });
    port
}

/// Runs headless Chromium on `url` until the page logs `ended` (or a fatal
/// error), returning the page's log lines.
fn chromium(url: &str) -> Vec<String> {
    chromium_until(url, "ended")
}

fn chromium_until(url: &str, end: &str) -> Vec<String> {
    common::browser::chromium(url, &[end, "error"], Duration::from_secs(90))
        .into_iter()
        .collect()
}

#[test]
fn a_recording_plays_in_chromium_with_hls_js() {
    let hlsjs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/hls.js/dist/hls.min.js");
    assert!(
        hlsjs.exists(),
        "hls.js is installed by scripts/deps.sh (npm ci in web/)"
    );
    let dir = tempfile::tempdir().unwrap();
    // 8 s with B-frames (negative composition offsets) and audio.
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=2 \
         videotestsrc num-buffers=240 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
           x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max=60 ! h264parse ! queue ! h.video \
         audiotestsrc num-buffers=376 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
           voaacenc ! aacparse ! queue ! h.audio",
        dir.path().display()
    ));
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.error.is_none(), "{:?}", run.error);
    let session = session_dirs(&dir.path().join("cam")).pop().unwrap();
    let port = serve(session, hlsjs);
    let lines = chromium(&format!("http://127.0.0.1:{port}/"));
    assert!(
        lines.iter().all(|l| !l.starts_with("error")),
        "hls.js reported errors: {lines:?}"
    );
    let ended = lines
        .iter()
        .find(|l| l.starts_with("ended"))
        .unwrap_or_else(|| panic!("playback did not reach the end: {lines:?}"));
    // "ended at 8.000 frames N width 320 buffered 0.000-8.000"
    let words: Vec<&str> = ended.split_whitespace().collect();
    let at: f64 = words[2].parse().unwrap();
    let frames: u64 = words[4].parse().unwrap();
    assert!((at - 8.0).abs() < 0.1, "{ended}");
    assert!(frames >= 200, "{ended}");
    assert_eq!(words[6], "320", "{ended}");
    let ranges = words[8];
    assert!(
        !ranges.contains(','),
        "one buffered range, no gaps: {ended}"
    );
    let start: f64 = ranges.split('-').next().unwrap().parse().unwrap();
    assert!(start.abs() < 0.05, "media starts at 0: {ended}");
}

/// The page for the element's own server: hls.js plays the live preview
/// manifest (reading `preview-start-seconds` from the manifest response,
/// as Cloudflare documents it), then a clip manifest of the preview.
const API_PAGE: &str = r#"<!doctype html><html><body>
<video id=live muted autoplay playsinline></video>
<video id=clip muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
const log = (m) => console.log("liveclip: " + m);
const api = "API";
const live = document.getElementById('live');
const hls = new Hls();
let previewStart = null;
hls.on(Hls.Events.ERROR, (e, d) => log("error live " + d.type + " " + d.details + " fatal=" + d.fatal));
hls.on(Hls.Events.MANIFEST_LOADED, (e, data) => {
  previewStart = parseFloat(data.networkDetails.getResponseHeader('preview-start-seconds'));
  log("preview-start-seconds " + previewStart + " media " + data.networkDetails.getResponseHeader('stream-media-id'));
});
hls.loadSource(api + "/cam/manifest/video.m3u8?duration=30s");
hls.attachMedia(live);
let first = null, clipStarted = false;
live.addEventListener('timeupdate', () => {
  if (first === null) first = live.currentTime;
  if (!clipStarted && live.currentTime - first >= 2 && previewStart !== null) {
    clipStarted = true;
    log("live advanced " + (live.currentTime - first).toFixed(3));
    const c = document.getElementById('clip');
    const h2 = new Hls();
    h2.on(Hls.Events.ERROR, (e, d) => log("error clip " + d.type + " " + d.details + " fatal=" + d.fatal));
    h2.loadSource(api + "/cam/manifest/clip.m3u8?time=" + (previewStart + 1).toFixed(3) + "&duration=3s");
    h2.attachMedia(c);
    c.addEventListener('ended', () => log("ended clip at " + c.currentTime.toFixed(3) +
        " frames " + c.getVideoPlaybackQuality().totalVideoFrames));
  }
});
</script></body></html>"#;

/// hls.js in Chromium plays the live preview and a clip manifest straight
/// from hlsclipsink's HTTP server (another origin: CORS), and reads
/// `preview-start-seconds` through hls.js.
#[test]
fn hls_js_plays_live_and_clip_manifests_from_the_element_server() {
    let hlsjs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/hls.js/dist/hls.min.js");
    assert!(
        hlsjs.exists(),
        "hls.js is installed by scripts/deps.sh (npm ci in web/)"
    );
    let dir = tempfile::tempdir().unwrap();
    let api = common::http::free_port();
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=1 http-address=127.0.0.1:{api} \
         videotestsrc is-live=true num-buffers=1800 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
           x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! h.video \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! h.audio",
        dir.path().display()
    ));
    play_until_segments(&pipeline, 6);
    let page = API_PAGE.replace("API", &format!("http://127.0.0.1:{api}"));
    let port = serve_page(dir.path().to_path_buf(), hlsjs, page);
    let lines = chromium_until(&format!("http://127.0.0.1:{port}/"), "ended clip");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        lines.iter().all(|l| !l.starts_with("error")),
        "hls.js reported errors: {lines:?}"
    );
    let start = lines
        .iter()
        .find_map(|l| l.strip_prefix("preview-start-seconds "))
        .unwrap_or_else(|| panic!("no preview-start-seconds: {lines:?}"));
    let seconds: f64 = start.split_whitespace().next().unwrap().parse().unwrap();
    assert!(seconds >= 0.0 && seconds.is_finite(), "{start}");
    assert!(
        start.contains(" media 2"),
        "stream-media-id read too: {start}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("live advanced")),
        "{lines:?}"
    );
    let ended = lines
        .iter()
        .find(|l| l.starts_with("ended clip"))
        .unwrap_or_else(|| panic!("the clip did not play to its end: {lines:?}"));
    let frames: u64 = ended.split_whitespace().nth(5).unwrap().parse().unwrap();
    assert!(frames >= 60, "{ended}");
}

/// Three players, one after the other, on `/rec/clip.m3u8`: each logs
/// `ended <player> at <time> frames <n>` or `error <player> …`, then `done`.
const PLAYERS_PAGE: &str = r#"<!doctype html><html><body>
<video id=h muted playsinline></video>
<video id=s muted playsinline></video>
<video-js id=j muted playsinline></video-js>
<script src="/hls.min.js"></script>
<script src="/shaka.js"></script>
<script src="/video.min.js"></script>
<script>
const log = (m) => console.log("liveclip: " + m);
const url = "/rec/clip.m3u8";
const frames = (v) => v.getVideoPlaybackQuality().totalVideoFrames;
function ended(name, v, next) {
  v.addEventListener('ended', () => {
    log("ended " + name + " at " + v.currentTime.toFixed(3) + " frames " + frames(v));
    next();
  }, { once: true });
  v.addEventListener('error', () => { log("error " + name + " media " + (v.error && v.error.code)); next(); }, { once: true });
}
function hlsjs(next) {
  const v = document.getElementById('h');
  const h = new Hls();
  h.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) { log("error hls.js " + d.details); next(); } });
  ended("hls.js", v, next);
  h.loadSource(url);
  h.attachMedia(v);
  v.play().catch(() => {});
}
async function shakaPlayer(next) {
  const v = document.getElementById('s');
  shaka.polyfill.installAll();
  const p = new shaka.Player();
  await p.attach(v);
  p.addEventListener('error', (ev) => { log("error shaka " + ev.detail.code); next(); });
  ended("shaka", v, next);
  try { await p.load(url); v.play().catch(() => {}); } catch (e) { log("error shaka load " + e.code); next(); }
}
function videojsPlayer(next) {
  const p = videojs('j', { muted: true, autoplay: true });
  p.on('error', () => { log("error video.js " + JSON.stringify(p.error())); next(); });
  p.on('ended', () => {
    const v = p.tech({ IWillNotUseThisInPlugins: true }).el();
    log("ended video.js at " + p.currentTime().toFixed(3) + " frames " + frames(v));
    next();
  });
  p.src({ src: url, type: 'application/x-mpegURL' });
}
const steps = [hlsjs, shakaPlayer, videojsPlayer];
let i = 0;
function next() { if (i < steps.length) { const s = steps[i++]; s(next); } else log("done"); }
window.onerror = (m) => log("error page " + m);
next();
</script></body></html>"#;

/// A clip manifest of an open-GOP recording (ffmpeg's libx264 with open
/// GOPs and B-pyramid, through MPEG-TS and h264parse) plays to its end
/// without an error in hls.js, Shaka Player and video.js, across open-GOP
/// I pictures and their leading pictures. It starts at the feed's IDR:
/// Chromium's Media Source takes only IDR pictures as H.264 random-access
/// points (a manifest starting at an open-GOP I picture fails there with
/// "Failed to send video packet for decoding … is_key_frame=0"), which
/// hlsclipsink tells the application in a warning.
#[test]
fn clip_manifests_of_an_open_gop_feed_play_in_three_players() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "12"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "50",
        ])
        .args([
            "-x264opts",
            "open-gop=1:b-pyramid=normal",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
        ])
        .arg(&feed)
        .status()
        .unwrap();
    assert!(status.success());
    let pipeline = launch(&format!(
        "filesrc location={} ! tsdemux name=d d. ! h264parse ! queue ! h.video \
         d. ! aacparse ! queue ! h.audio \
         hlsclipsink name=h location={} stream-id=cam target-duration=2",
        feed.display(),
        dir.path().display()
    ));
    let result = run(&pipeline, Duration::from_secs(60));
    ok(&result);
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("open-GOP I pictures, not IDR")),
        "{:?}",
        result.warnings
    );
    let session = session_dirs(&dir.path().join("cam")).pop().unwrap();
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    let sink = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    {
        let query = "time=0.3&duration=8";
        let m = sink.emit_by_name::<gst::Structure>(
            "get-clip-manifest",
            &[&Some(media_id.as_str()), &query],
        );
        assert!(!m.has_field("error"), "{m:?}");
        let text = m.get::<String>("manifest").unwrap();
        std::fs::write(session.join("clip.m3u8"), &text).unwrap();
        let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        let total: f64 = playlist
            .segments
            .iter()
            .map(|s| f64::from(s.duration))
            .sum();

        let port = serve_scripts(
            session.clone(),
            vec![
                ("/hls.min.js".into(), player("hls.js/dist/hls.min.js")),
                (
                    "/shaka.js".into(),
                    player("shaka-player/dist/shaka-player.compiled.js"),
                ),
                ("/video.min.js".into(), player("video.js/dist/video.min.js")),
            ],
            PLAYERS_PAGE.to_string(),
        );
        let lines = common::browser::chromium(
            &format!("http://127.0.0.1:{port}/"),
            &["done"],
            Duration::from_secs(120),
        );
        assert!(
            lines.iter().all(|l| !l.starts_with("error")),
            "{query}: player errors: {lines:?}"
        );
        for name in ["hls.js", "shaka", "video.js"] {
            let ended = lines
                .iter()
                .find(|l| l.starts_with(&format!("ended {name} ")))
                .unwrap_or_else(|| panic!("{query}: {name} did not play to the end: {lines:?}"));
            // "ended NAME at T frames N": to the end of the manifest's media.
            let words: Vec<&str> = ended.split_whitespace().collect();
            let at: f64 = words[3].parse().unwrap();
            let frames: u64 = words[5].parse().unwrap();
            assert!(
                (at - total).abs() < 0.3,
                "{query}: {name}: {ended} (media {total} s)"
            );
            // At least the requested 8 s of 25 fps were decoded.
            assert!(frames >= 200, "{query}: {name}: {ended}");
        }
    }
}

/// hls.js on a ladder session's multivariant playlist, served by the
/// element next to this page (`/ui/ladder.html?media=ID`): it starts on the
/// lowest level (set by hand, so hls.js's bandwidth estimate switches
/// nothing), switches to the highest with `nextLevel` (the smooth switch:
/// the new level's fragments follow the old one's in the same buffer) once
/// 2 s have played, and plays to the end. It logs the levels, the switches,
/// every fragment loaded, waits and their recovery, a playhead that stops
/// moving (`stuck`), and which numbered picture each presented frame shows
/// against its media time (read back from the bands through a canvas).
const LADDER_PAGE: &str = r#"<!doctype html><html><body>
<video id=v muted autoplay playsinline></video>
<canvas id=c width=16 height=240></canvas>
<script src="hls.min.js"></script>
<script>
const log = (m) => console.log("liveclip: " + m);
const media = new URLSearchParams(location.search).get("media");
const v = document.getElementById("v");
const ctx = document.getElementById("c").getContext("2d", { willReadFrequently: true });
const hls = new Hls({ autoStartLoad: false });
let from = -1, to = -1, forced = false, waiting = false, stuck = false;
hls.on(Hls.Events.ERROR, (e, d) => log((d.fatal ? "error " : "warning ") + d.type + " " + d.details));
hls.on(Hls.Events.MANIFEST_PARSED, () => {
  const heights = hls.levels.map((l) => l.height);
  log("levels " + hls.levels.map((l, i) => i + ":" + l.height + ":" + l.uri).join(" "));
  from = heights.indexOf(Math.min(...heights));
  to = heights.indexOf(Math.max(...heights));
  hls.startLevel = from;
  hls.loadLevel = from;
  hls.startLoad();
});
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) =>
  log("switched " + d.level + " " + hls.levels[d.level].height + " at " + v.currentTime.toFixed(3)));
hls.on(Hls.Events.FRAG_LOADED, (e, d) =>
  log("frag " + d.frag.type + " " + d.frag.level + " " + d.frag.sn + " " + d.frag.url));
v.addEventListener("timeupdate", () => {
  if (!forced && to >= 0 && v.currentTime >= 2) {
    forced = true;
    log("forced " + to + " " + hls.levels[to].height + " at " + v.currentTime.toFixed(3));
    hls.nextLevel = to;
  }
});
v.addEventListener("waiting", () => { waiting = true; log("waiting at " + v.currentTime.toFixed(3)); });
v.addEventListener("playing", () => {
  if (waiting) log("resumed at " + v.currentTime.toFixed(3));
  waiting = false;
});
let last = -1, still = 0;
setInterval(() => {
  if (stuck || v.ended || v.currentTime === 0) return;
  if (v.currentTime !== last) { last = v.currentTime; still = 0; return; }
  still += 250;
  if (still >= 3000) { stuck = true; log("stuck at " + v.currentTime.toFixed(3) + " paused " + v.paused); }
}, 250);
// Per frame height: how many presented frames, and how often each
// "picture number - media time in frames" was seen (one value if every
// rendition shows the same picture at the same time).
const pictures = {};
function onFrame(now, md) {
  ctx.drawImage(v, 0, 0, 16, 240);
  const px = ctx.getImageData(8, 0, 1, 240).data;
  let n = 0;
  for (let band = 4; band >= 0; band--) {
    let sum = 0;
    for (let y = band * 48 + 12; y < band * 48 + 36; y++) sum += px[y * 4];
    n = n * 5 + Math.min(4, Math.max(0, Math.round(sum / 24 / 63.75)));
  }
  const p = (pictures[md.height] = pictures[md.height] || { frames: 0, offsets: {} });
  const offset = n - Math.round(md.mediaTime * 30);
  p.frames++;
  p.offsets[offset] = (p.offsets[offset] || 0) + 1;
  v.requestVideoFrameCallback(onFrame);
}
v.requestVideoFrameCallback(onFrame);
v.addEventListener("ended", () => {
  for (const [h, p] of Object.entries(pictures)) {
    log("pictures " + h + " " + p.frames + " " +
        Object.entries(p.offsets).map(([o, c]) => o + "x" + c).join(","));
  }
  const b = v.buffered;
  const ranges = [];
  for (let i = 0; i < b.length; i++) ranges.push(b.start(i).toFixed(3) + "-" + b.end(i).toFixed(3));
  log("ended at " + v.currentTime.toFixed(3) + " frames " + v.getVideoPlaybackQuality().totalVideoFrames +
      " width " + v.videoWidth + " buffered " + ranges.join(","));
});
hls.loadSource("/" + media + "/manifest/video.m3u8");
hls.attachMedia(v);
</script></body></html>"#;

/// Drives the Live Replay page on a ladder being recorded: the Program
/// player (on the live window, which can't be marked on) shows the
/// rendition it plays; the viewer picks another one, then Auto.
const LADDER_DRIVER: &str = r##"
(async () => {
  const log = (m) => console.log("liveclip: autotest " + m);
  const until = async (f, ms = 20000) => {
    const t = Date.now();
    while (!f()) {
      if (Date.now() - t > ms) throw new Error("timeout waiting for " + f);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await until(() => window.liveclip);
    const L = window.liveclip;
    const video = document.getElementById("live-player");
    const picker = document.getElementById("main-level-picker");
    const chip = document.getElementById("main-level");
    const select = document.getElementById("main-level-select");
    await until(() => !picker.hidden && !chip.hidden && video.currentTime > 0);
    await until(() => L.state.previewStart !== null);
    log("shown " + chip.textContent + " options " +
        [...select.options].map((o) => o.textContent).join(", "));
    log("main markable " + (L.players.main.anchor !== null) + " preview markable " +
        (L.players.preview.anchor !== null));
    const hls = L.players.main.hls;
    const other = [...select.options].find((o) => o.value !== "-1" && o.textContent !== chip.textContent);
    select.value = other.value;
    select.dispatchEvent(new Event("change"));
    await until(() => chip.textContent === other.textContent);
    const t = video.currentTime;
    await until(() => video.currentTime > t + 0.5);
    log("picked " + other.textContent + " manual " + !hls.autoLevelEnabled + " playing on from " + t.toFixed(3));
    select.value = "-1";
    select.dispatchEvent(new Event("change"));
    await until(() => hls.autoLevelEnabled);
    log("auto");
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
})();
"##;

/// An ABR ladder recorded live by hlsclipsink (three renditions scaled from
/// one numbered source, 1 s GOPs and segments, AAC as its own rendition)
/// with its HTTP server. While it records, the Live Replay page shows the
/// level its Program player plays and lets the viewer pick another (and
/// Auto). Then hls.js in Chromium plays the session's multivariant
/// playlist: a level switch forced mid-stream happens, the fragments then
/// come from the new rendition, and playback goes on to the end without a
/// gap, a stall or an error, each frame showing the picture of its time on
/// both sides of the switch.
#[test]
fn hls_js_switches_levels_of_a_ladder_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let api = common::http::free_port();
    let site = common::browser::site(dir.path(), Some(LADDER_DRIVER));
    std::fs::write(site.join("ladder.html"), LADDER_PAGE).unwrap();
    let seconds = 14;
    let encode = "x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max=30 \
                  option-string=\"scenecut=0\" ! h264parse";
    let rendition = |w: u32, h: u32, pad: &str| {
        format!(
            "t. ! queue ! videoscale add-borders=false ! \
             video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! {encode} ! h.{pad} "
        )
    };
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam target-duration=1 \
           http-address=127.0.0.1:{api} http-web-root={site} \
           video_0::rendition=360p video_1::rendition=240p video_2::rendition=180p \
         appsrc name=src format=time is-live=true do-timestamp=true \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! tee name=t \
         {r360}{r240}{r180}\
         audiotestsrc is-live=true num-buffers={audio} samplesperbuffer=1024 ! \
           audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! h.audio_0",
        loc = dir.path().display(),
        site = site.display(),
        r360 = rendition(640, 360, "video_0"),
        r240 = rendition(426, 240, "video_1"),
        r180 = rendition(320, 180, "video_2"),
        audio = seconds * 48_000 / 1024 + 1,
    ));
    feed_numbered(&pipeline, seconds * FPS, true);
    play_until_segments(&pipeline, 3);

    // The Live Replay page on the stream while it records.
    let lines = common::browser::chromium(
        &format!("http://127.0.0.1:{api}/ui/?stream=cam"),
        &["autotest done", "autotest failed"],
        Duration::from_secs(30),
    );
    assert!(lines.iter().any(|l| l == "autotest done"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("error")),
        "the page reported errors: {lines:?}"
    );
    let listed = find_in(&lines, "main levels ");
    let names: Vec<&str> = listed
        .split(", ")
        .map(|l| l.split(" · ").next().unwrap())
        .collect();
    assert_eq!(names, ["360p", "240p", "180p"], "{listed}");
    let shown = find_in(&lines, "autotest shown ");
    assert!(shown.contains(" options Auto, 360p · "), "{shown}");
    // The live window of a ladder is no more markable than a single one.
    assert_eq!(
        find_in(&lines, "autotest main markable "),
        "false preview markable true"
    );
    let picked = find_in(&lines, "autotest picked ");
    let label = picked.split(" manual ").next().unwrap();
    assert!(picked.contains(" manual true "), "{picked}");
    let pick = lines
        .iter()
        .position(|l| *l == format!("main pick {label}"))
        .unwrap_or_else(|| panic!("no pick of {label}: {lines:?}"));
    let height = label.split('p').next().unwrap();
    assert!(
        lines[pick..]
            .iter()
            .any(|l| *l == format!("level {height} main {label}")),
        "the page logs the picked level: {lines:?}"
    );
    assert!(lines.iter().any(|l| l == "main pick auto"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "autotest auto"), "{lines:?}");

    // Recorded to its end; the pipeline stays PLAYING, so the server stays up.
    play_to_eos(&pipeline, Duration::from_secs(60));
    let session = session_dirs(&dir.path().join("cam")).pop().unwrap();
    let media = session.file_name().unwrap().to_string_lossy().into_owned();
    assert!(session.join("master.m3u8").exists(), "a ladder session");
    let segments = media_playlist(&session.join("360p/replay.m3u8")).segments;
    let last_sn = segments.len() - 1;
    let total: f64 = segments.iter().map(|s| f64::from(s.duration)).sum();

    let lines = common::browser::chromium(
        &format!("http://127.0.0.1:{api}/ui/ladder.html?media={media}"),
        &["ended", "error", "stuck"],
        Duration::from_secs(60),
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("error") || l.starts_with("stuck")),
        "hls.js failed or playback stopped: {lines:?}"
    );
    // Three levels; the page started on the lowest, forced the highest.
    let levels = find_in(&lines, "levels ");
    let heights: Vec<&str> = levels
        .split_whitespace()
        .map(|l| l.split(':').nth(1).unwrap())
        .collect();
    assert_eq!(heights, ["180", "240", "360"], "{levels}");
    let index = |height: &str| heights.iter().position(|h| *h == height).unwrap();
    let (from, to) = (index("180"), index("360"));
    let forced_at = lines
        .iter()
        .position(|l| l.starts_with("forced "))
        .unwrap_or_else(|| panic!("no level switch was forced: {lines:?}"));
    let forced = &lines[forced_at];
    assert!(
        forced.starts_with(&format!("forced {to} 360 at ")),
        "{forced}"
    );
    let at: f64 = forced.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((2.0..4.0).contains(&at), "mid-stream: {forced}");
    let switches: Vec<(usize, &String)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("switched "))
        .collect();
    assert!(
        switches.len() >= 2
            && switches[0].1.starts_with(&format!("switched {from} 180 "))
            && switches
                .iter()
                .all(|(i, l)| *i < forced_at || l.starts_with(&format!("switched {to} 360 ")))
            && switches.last().unwrap().0 > forced_at,
        "LEVEL_SWITCHED to the lowest, then to the forced level: {switches:?}"
    );
    // Fragments: the lowest rendition's until the switch, the highest's
    // after it, to the last segment; audio from its own rendition.
    let switched_at = switches.last().unwrap().0;
    let frags: Vec<(usize, Vec<&str>)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.strip_prefix("frag ").map(|f| (i, f.split(' ').collect())))
        .collect();
    for (i, f) in &frags {
        let (kind, level, url) = (f[0], f[1], f[3]);
        let dir = match kind {
            "main" if level == from.to_string() => "180p",
            "main" if level == to.to_string() => "360p",
            "audio" => "audio_0",
            _ => panic!("a fragment of another level: {f:?} ({lines:?})"),
        };
        assert!(
            url.contains(&format!("/{media}/{dir}/segment-")),
            "fragment from {dir}'s URI: {f:?}"
        );
        if kind == "main" && level == from.to_string() {
            assert!(
                *i < switched_at,
                "no fragment of the old level after the switch: {f:?}"
            );
        }
    }
    let after: Vec<usize> = frags
        .iter()
        .filter(|(i, f)| *i > forced_at && f[0] == "main" && f[1] == to.to_string())
        .map(|(_, f)| f[2].parse().unwrap())
        .collect();
    assert_eq!(
        after.iter().max(),
        Some(&last_sn),
        "the new level's fragments to the end: {frags:?}"
    );
    assert!(frags.iter().any(|(_, f)| f[0] == "audio"), "{frags:?}");
    // Every wait ended (playback resumed).
    let waits = lines.iter().filter(|l| l.starts_with("waiting ")).count();
    let resumes = lines.iter().filter(|l| l.starts_with("resumed ")).count();
    assert_eq!(waits, resumes, "a wait without recovery: {lines:?}");
    // To the end, the last frames at 640x360, one buffered range across
    // the join of the two levels (hls.js may drop what was played long ago).
    let ended = find_in(&lines, "ended ");
    let words: Vec<&str> = ended.split_whitespace().collect();
    let end: f64 = words[1].parse().unwrap();
    let frames: u64 = words[3].parse().unwrap();
    assert!((end - total).abs() < 0.1, "{ended} (media {total} s)");
    assert!(frames >= seconds * FPS * 9 / 10, "{ended}");
    assert_eq!(words[5], "640", "{ended}");
    let ranges = words[7];
    assert!(
        !ranges.contains(','),
        "one buffered range, no gaps: {ended}"
    );
    let kept: f64 = ranges.split('-').next().unwrap().parse().unwrap();
    let join: f64 = switches
        .last()
        .unwrap()
        .1
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kept < join, "the range spans the switch at {join}: {ended}");
    // Frames of both renditions were presented, each showing the picture
    // of its media time, with the same offset on both sides of the switch.
    let pictures: Vec<Vec<&str>> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("pictures "))
        .map(|p| p.split(' ').collect())
        .collect();
    let shown: Vec<&str> = pictures.iter().map(|p| p[0]).collect();
    assert!(
        shown.contains(&"180") && shown.contains(&"360") && pictures.len() == 2,
        "{pictures:?}"
    );
    for p in &pictures {
        let count: u64 = p[1].parse().unwrap();
        assert!(count >= 20, "{p:?}");
    }
    let offsets: Vec<&str> = pictures
        .iter()
        .map(|p| p[2].split('x').next().unwrap())
        .collect();
    assert!(
        pictures.iter().all(|p| !p[2].contains(',')) && offsets[0] == offsets[1],
        "every frame of both renditions shows the picture of its time: {pictures:?}"
    );
}

/// The rest of the first line of `lines` starting with `prefix`.
fn find_in(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
        .to_string()
}

/// Drives the Live Replay page on a low-latency live stream: it reads the
/// number of every frame the Program player presents (through a canvas)
/// and how long after it was pushed (`t0` in the page's URL: when frame 0
/// was pushed, by the wall clock; frame n follows n / 30 s later) it was
/// shown, for 10 s of playback from the first frame shown once playing
/// (after the page's jump to the live point at the start, if any). It logs what hls.js
/// loaded (parts, playlist requests from the resource timing entries),
/// its stalls and errors, and what the page shows.
const LL_DRIVER: &str = r##"
(async () => {
  const log = (m) => console.log("liveclip: autotest " + m);
  const until = async (f, ms = 30000) => {
    const t = Date.now();
    while (!f()) {
      if (Date.now() - t > ms) throw new Error("timeout waiting for " + f);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  performance.setResourceTimingBufferSize(100000);
  const t0 = Number(new URLSearchParams(location.search).get("t0"));
  try {
    await until(() => window.liveclip && window.liveclip.players.main.hls);
    const L = window.liveclip;
    const hls = L.players.main.hls;
    const video = document.getElementById("live-player");
    log("config lowLatencyMode " + hls.config.lowLatencyMode + " liveSyncDuration " +
        hls.config.liveSyncDuration);
    let parts = 0, ranged = 0, whole = 0, stalls = 0, waits = 0, measuring = false;
    hls.on(Hls.Events.FRAG_LOADED, (e, d) => {
      if (d.frag.type !== "main" || !measuring) return;
      if (d.part) {
        parts++;
        if (d.part.byteRange && d.part.byteRange.length === 2) ranged++;
      } else {
        whole++;
      }
    });
    hls.on(Hls.Events.ERROR, (e, d) => {
      if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && measuring) stalls++;
      log("hls error " + d.type + " " + d.details + " fatal=" + d.fatal);
    });
    video.addEventListener("waiting", () => { if (measuring) { waits++; log("waiting at " + video.currentTime.toFixed(3)); } });

    // Frame numbers of the presented frames (five bands, base 5).
    const canvas = document.createElement("canvas");
    canvas.width = 16;
    canvas.height = 240;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const behind = [];
    let last = -1, backwards = 0, second = [], presented = 0;
    const onFrame = (now, md) => {
      const shown = Date.now();
      ctx.drawImage(video, 0, 0, 16, 240);
      const px = ctx.getImageData(8, 0, 1, 240).data;
      let n = 0;
      for (let band = 4; band >= 0; band--) {
        let sum = 0;
        for (let y = band * 48 + 12; y < band * 48 + 36; y++) sum += px[y * 4];
        n = n * 5 + Math.min(4, Math.max(0, Math.round(sum / 24 / 63.75)));
      }
      if (measuring) {
        const ms = shown - (t0 + (n * 1000) / 30);
        behind.push(ms);
        second.push(ms);
        if (n < last) backwards++;
      }
      last = n;
      presented++;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    // Playing, and done with the page's jump to the live point at the
    // start (a seek, issued when playback first starts) if it made one.
    await until(() => L.players.main.playingLogged && !video.seeking && video.readyState >= 3 &&
                      presented > 0);
    const seen = presented;
    await until(() => presented > seen);
    measuring = true;
    const start = performance.now();
    log("measuring from frame " + last + " at " + video.currentTime.toFixed(3));
    while (performance.now() - start < 10000) {
      await new Promise((r) => setTimeout(r, 1000));
      if (second.length) {
        log("behind " + Math.round(Math.min(...second)) + " " + Math.round(Math.max(...second)) +
            " frames " + second.length + " hls.js latency " + hls.latency.toFixed(3) +
            " target " + (hls.targetLatency || 0).toFixed(3) + " rate " + video.playbackRate);
      }
      second = [];
    }
    measuring = false;
    const sorted = [...behind].sort((a, b) => a - b);
    log("frames " + behind.length + " behind max " + Math.round(sorted[sorted.length - 1]) +
        " p50 " + Math.round(sorted[sorted.length >> 1]) + " min " + Math.round(sorted[0]) +
        " backwards " + backwards);
    log("loaded parts " + parts + " ranged " + ranged + " whole " + whole);
    log("stalls " + stalls + " waits " + waits + " same player " + (L.players.main.hls === hls));
    const playlists = performance.getEntriesByType("resource")
      .map((e) => e.name)
      .filter((u) => u.includes("/cam/manifest/video.m3u8") && !u.includes("duration="));
    log("playlists " + playlists.length + " blocking " +
        playlists.filter((u) => u.includes("_HLS_msn=")).length +
        " first " + playlists[0]);
    const chip = document.getElementById("main-latency");
    log("shown ll " + !document.getElementById("main-ll").hidden + " latency " +
        (chip.hidden ? "hidden" : chip.textContent) + " state " + L.state.lowLatency);
    log("done");
  } catch (e) {
    log("failed " + e.message);
  }
})();
"##;

/// A live stream recorded with parts (`part-duration=0.5`,
/// `target-duration=2`, GOP 2 s) plays on the Live Replay page in hls.js's
/// low-latency mode: the playlist is reloaded by blocking requests
/// (`_HLS_msn`), the media comes as parts (byte ranges of the segment being
/// written), and over 10 s every presented frame is shown at most 2 s after
/// it was pushed into the pipeline (read from the numbered pictures against
/// the wall clock), without a stall or an error. The page says it plays
/// low-latency and shows (and logs) how far behind live it is, which agrees
/// with the frames.
#[test]
fn hls_js_plays_a_low_latency_stream_within_two_seconds_of_live() {
    let dir = tempfile::tempdir().unwrap();
    let api = common::http::free_port();
    let site = common::browser::site(dir.path(), Some(LL_DRIVER));
    let pipeline = common::numbered::numbered_av(
        dir.path(),
        &format!(
            "target-duration=2 part-duration=0.5 http-address=127.0.0.1:{api} http-web-root={}",
            site.display()
        ),
        60,
        60,
        true,
    );
    // When frame 0 was pushed, by the wall clock (the page's Date.now()).
    let pushed = std::sync::Arc::new(std::sync::OnceLock::new());
    {
        let pushed = pushed.clone();
        pipeline
            .by_name("src")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                pushed.get_or_init(std::time::SystemTime::now);
                gst::PadProbeReturn::Ok
            });
    }
    play_until_segments(&pipeline, 2);
    let t0 = pushed
        .get()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;

    // The live playlist is low-latency.
    let playlist =
        common::http::get(&format!("http://127.0.0.1:{api}/cam/manifest/video.m3u8")).text();
    assert!(
        playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.500"),
        "{playlist}"
    );

    let lines = common::browser::chromium(
        &format!("http://127.0.0.1:{api}/ui/?stream=cam&t0={t0:.1}"),
        &["autotest done", "autotest failed"],
        Duration::from_secs(60),
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(lines.iter().any(|l| l == "autotest done"), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("error") || l.starts_with("autotest hls error")),
        "errors: {lines:?}"
    );
    assert_eq!(
        find_in(&lines, "autotest config "),
        "lowLatencyMode true liveSyncDuration undefined"
    );
    // hls.js read the playlist as low-latency.
    assert_eq!(
        find_in(&lines, "main low-latency "),
        "part-target 0.500 part-hold-back 1.500 can-block-reload true"
    );

    // Every frame shown within 2 s of its push, in order.
    let summary = find_in(&lines, "autotest frames ");
    let words: Vec<&str> = summary.split_whitespace().collect();
    let number = |i: usize| -> f64 { words[i].parse().unwrap() };
    let (frames, max, p50, min, backwards) =
        (number(0), number(3), number(5), number(7), number(9));
    assert!(frames >= 250.0, "10 s of 30 fps shown: {summary}");
    assert!(max <= 2000.0, "at most 2 s behind live: {summary}");
    assert!(min > 0.0, "{summary}");
    assert_eq!(backwards, 0.0, "{summary}");

    // Parts (byte ranges), reloaded with blocking requests, no stall.
    let loaded = find_in(&lines, "autotest loaded parts ");
    let words: Vec<u64> = loaded
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (parts, ranged, whole) = (words[0], words[1], words[2]);
    assert!(parts >= 15, "about two parts a second: {loaded}");
    assert_eq!(ranged, parts, "parts are byte ranges: {loaded}");
    assert_eq!(whole, 0, "no whole segment while live: {loaded}");
    assert_eq!(
        find_in(&lines, "autotest stalls "),
        "0 waits 0 same player true"
    );
    let playlists = find_in(&lines, "autotest playlists ");
    let words: Vec<&str> = playlists.split_whitespace().collect();
    let (loads, blocking): (u64, u64) = (words[0].parse().unwrap(), words[2].parse().unwrap());
    assert!(blocking >= 15, "{playlists}");
    assert_eq!(
        blocking,
        loads - 1,
        "every reload after the first blocks: {playlists}"
    );

    // The page shows it, and what it shows agrees with the frames.
    let shown = find_in(&lines, "autotest shown ");
    assert!(
        shown.starts_with("ll true latency ") && shown.ends_with(" s behind live state true"),
        "{shown}"
    );
    let latencies: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("latency "))
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(latencies.len() >= 10, "once a second: {lines:?}");
    let last = *latencies.last().unwrap();
    assert!(
        (last * 1000.0 - p50).abs() < 500.0,
        "the page's {last} s against the frames' {p50} ms: {lines:?}"
    );
}
