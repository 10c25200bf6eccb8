// SPDX-License-Identifier: MPL-2.0
//! `liveclip-server`: the HTTP API of hlsclipsink over a recordings
//! directory, with no pipeline: playlists, previews, clip manifests, MP4
//! clips, stills, storyboards, sessions, media files and the Live Replay
//! page, read-only. Recordings that a pipeline (in this or another process,
//! on this machine or through a shared filesystem) is still writing are
//! followed as they grow.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gstliveclip::hls::index::LiveIndex;
use gstliveclip::hls::service::{ClipService, Limits};
use gstliveclip::http::{Endpoint, Registration, register};

const HELP: &str = "\
liveclip-server: serve liveclip recordings over HTTP, without a pipeline

USAGE:
    liveclip-server --location DIR [OPTIONS]

Serves every stream under DIR (each {DIR}/{stream-id}/ with a sessions.json,
as hlsclipsink records them) with the same HTTP API as hlsclipsink's
http-address (docs/http-api.md): /{stream-id}/manifest/video.m3u8,
/{id}/manifest/clip.m3u8, /{id}/clip.mp4, /{id}/thumbnails/…, /{id}/sessions,
/{media-id}/{file} and the Live Replay page. Streams that appear later are
picked up; sessions still being recorded (by any process) are followed as
their segments are written. Nothing is written under DIR.

OPTIONS:
    --location DIR              the recordings directory (hlsclipsink's location) [required]
    --http-address ADDR         address and port to listen on [default: 127.0.0.1:8080]
    --token TOKEN               every request needs it (Authorization: Bearer, or token=)
    --web-root DIR              serve the Live Replay page from DIR at /ui/
    --max-concurrent-clips N    MP4 clips and stills made at once per stream, 1-64 [default: 2]
    --max-clip-duration S       longest clip in seconds [default: 60]
    --max-preview-duration S    longest preview manifest in seconds [default: 300]
    --rescan S                  look for new streams every S seconds [default: 2]
    -h, --help                  this text

Logs go to standard error. SIGTERM or SIGINT stops it (open requests are dropped).
";

struct Options {
    location: PathBuf,
    address: String,
    token: Option<String>,
    web_root: Option<PathBuf>,
    limits: Limits,
    rescan: Duration,
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut opts = Options {
        location: PathBuf::new(),
        address: "127.0.0.1:8080".into(),
        token: None,
        web_root: None,
        limits: Limits::default(),
        rescan: Duration::from_secs(2),
    };
    let mut location = None;
    let mut i = 0;
    while i < args.len() {
        let name = args[i].as_str();
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value (see --help)"))?;
        let seconds = |v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("{name}: {v:?} is not a number of seconds"))
        };
        match name {
            "--location" => location = Some(PathBuf::from(value)),
            "--http-address" => opts.address = value.clone(),
            "--token" => opts.token = Some(value.clone()).filter(|t| !t.is_empty()),
            "--web-root" => opts.web_root = Some(PathBuf::from(value)),
            "--max-concurrent-clips" => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("{name}: {value:?} is not 1 to 64"))?;
                opts.limits.workers = n;
                opts.limits.queue = n * 16;
            }
            "--max-clip-duration" => opts.limits.max_clip = seconds(value)? * 1_000_000_000,
            "--max-preview-duration" => opts.limits.max_preview = seconds(value)? * 1_000_000_000,
            "--rescan" => opts.rescan = Duration::from_secs(seconds(value)?),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
        i += 2;
    }
    opts.location = location.ok_or("--location is required (see --help)")?;
    if !opts.location.is_dir() {
        return Err(format!("{} is not a directory", opts.location.display()));
    }
    Ok(Some(opts))
}

fn log(line: &str) {
    eprintln!(
        "{} liveclip-server: {line}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
}

/// The stream directories under the location: those with a sessions.json.
fn streams(location: &std::path::Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(location) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("sessions.json").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| gstliveclip::hls::sessions::is_safe_id(name))
        .collect();
    out.sort();
    out
}

/// Waits for SIGTERM or SIGINT on a thread of its own (the signals are
/// blocked in every thread, started after this).
fn signals() -> std::sync::mpsc::Receiver<i32> {
    // SAFETY: plain libc signal-set calls on a local set; blocking the
    // signals before any other thread starts makes every thread inherit it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: waits on the set built above.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            let _ = tx.send(sig);
        }
    });
    rx
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("liveclip-server: {e}");
            std::process::exit(2);
        }
    };
    let stop = signals();
    if let Err(e) = gst::init() {
        eprintln!("liveclip-server: GStreamer did not start: {e}");
        std::process::exit(1);
    }
    let mut served: Vec<(String, Registration)> = Vec::new();
    let mut web_root = opts.web_root.clone();
    log(&format!(
        "serving {} on http://{}/",
        opts.location.display(),
        opts.address
    ));
    loop {
        for stream in streams(&opts.location) {
            if served.iter().any(|(s, _)| *s == stream) {
                continue;
            }
            let service = ClipService::new(
                opts.location.join(&stream),
                Arc::new(LiveIndex::default()),
                opts.limits,
            );
            let endpoint = Endpoint::Stream {
                stream_id: stream.clone(),
                service,
                // The page once, with the first stream.
                web_root: web_root.take(),
            };
            match register(&opts.address, opts.token.clone(), endpoint) {
                Ok(r) => {
                    log(&format!("stream {stream} at http://{}/{stream}/", r.bound));
                    served.push((stream, r));
                }
                Err(e) => {
                    eprintln!("liveclip-server: {e}");
                    std::process::exit(1);
                }
            }
        }
        match stop.recv_timeout(opts.rescan) {
            Ok(sig) => {
                log(&format!("signal {sig}: stopping"));
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    served.clear();
    log("stopped");
}
