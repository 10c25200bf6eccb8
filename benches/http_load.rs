// SPDX-License-Identifier: MPL-2.0
//! Load on the HTTP API: many parallel `clip.mp4` requests (10 s clips at
//! random starts of the 10-minute 1080p recording made by the clip_cut
//! benchmark), through loopback with a hyper client, at several
//! concurrency levels, against two servers of the same recording in the
//! same run:
//!
//! - element: the listener hlsclipsink starts (`http::register` with a
//!   `ClipService` and the element's default limits: 2 clip workers, 32
//!   queued), in this process;
//! - server: `liveclip-server --location` over the recording directory, a
//!   process of its own (the binary cargo builds with this benchmark), with
//!   the same limits (`--max-concurrent-clips 2`).
//!
//! Each level runs in rounds, both targets per round on the same random
//! starts, the order alternating. Prints clips/s, GB/s and p50/p99 latency
//! (request sent to last body byte received) per target and the
//! server/element ratios. Every answer is checked: 200 (429 is counted as
//! busy), a body as long as its Content-Length, an MP4 of sane size and
//! 10 s, and the same size from both targets for the same start; one clip
//! is fetched from both, compared byte for byte and decoded by ffmpeg.
//!
//! `cargo bench --bench http_load` (run `cargo bench --bench clip_cut` once
//! first: it makes the recording).

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use gstliveclip::hls::index::LiveIndex;
use gstliveclip::hls::service::{ClipService, Limits};

const NS: u64 = 1_000_000_000;
const PER_LEVEL: usize = 200;
const ROUNDS: usize = 3;
const LEVELS: [usize; 4] = [1, 4, 16, 64];
/// hlsclipsink's default max-concurrent-clips.
const WORKERS: usize = 2;
/// Bounds of a sane 10 s clip of the 6 Mb/s recording (with its preroll
/// from the keyframe before the start).
const MIN_CLIP: usize = 6_000_000;
const MAX_CLIP: usize = 12_000_000;

type HttpClient = Client<HttpConnector, Full<bytes::Bytes>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What one target answered at one level, over all its rounds.
#[derive(Default)]
struct Tally {
    elapsed: Duration,
    latencies: Vec<Duration>,
    bytes: u64,
    /// 429 answers.
    busy: usize,
    /// Anything else that is not a right clip.
    errors: Vec<String>,
    /// Body size by start (ms), of the clips answered.
    sizes: HashMap<u64, usize>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.bytes += other.bytes;
        self.busy += other.busy;
        self.errors.extend(other.errors);
        self.sizes.extend(other.sizes);
    }

    /// Clips/s, GB/s, p50 ms, p99 ms.
    fn stats(&mut self) -> [f64; 4] {
        self.latencies.sort();
        let secs = self.elapsed.as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if self.latencies.is_empty() {
            return [0.0, 0.0, f64::NAN, f64::NAN];
        }
        [
            self.latencies.len() as f64 / secs,
            self.bytes as f64 / 1e9 / secs,
            ms(percentile(&self.latencies, 0.5)),
            ms(percentile(&self.latencies, 0.99)),
        ]
    }
}

fn clip_uri(base: &str, mid: &str, ms: u64) -> String {
    format!(
        "{base}/{mid}/clip.mp4?time={}.{:03}&duration=10s",
        ms / 1000,
        ms % 1000
    )
}

/// One request: the body of a right clip, or why not (`Ok(None)`: busy).
async fn fetch(client: &HttpClient, uri: &str) -> Result<Option<bytes::Bytes>, String> {
    let req = hyper::Request::get(uri)
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let duration = header("clip-duration-seconds").and_then(|v| v.parse::<f64>().ok());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{status}, body cut: {e:?}"))?
        .to_bytes();
    if status == 429 {
        return Ok(None);
    }
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    if length != Some(body.len()) {
        return Err(format!(
            "{} body bytes, Content-Length {length:?}",
            body.len()
        ));
    }
    if !(MIN_CLIP..=MAX_CLIP).contains(&body.len()) || body.get(4..8) != Some(b"ftyp") {
        return Err(format!("not a 10 s MP4: {} bytes", body.len()));
    }
    if !duration.is_some_and(|d| (d - 10.0).abs() < 0.05) {
        return Err(format!("clip-duration-seconds {duration:?}"));
    }
    Ok(Some(body))
}

/// `starts` (ms) from `concurrency` clients at once.
async fn load(base: &str, mid: &str, starts: &[u64], concurrency: usize) -> Tally {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let queue = Arc::new(tokio::sync::Mutex::new(starts.to_vec()));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let queue = queue.clone();
        let (base, mid) = (base.to_string(), mid.to_string());
        set.spawn(async move {
            let mut out = Tally::default();
            loop {
                let Some(ms) = queue.lock().await.pop() else {
                    return out;
                };
                let t = Instant::now();
                match fetch(&client, &clip_uri(&base, &mid, ms)).await {
                    Ok(Some(body)) => {
                        out.latencies.push(t.elapsed());
                        out.bytes += body.len() as u64;
                        out.sizes.insert(ms, body.len());
                    }
                    Ok(None) => out.busy += 1,
                    Err(e) => out.errors.push(format!("start {ms} ms: {e}")),
                }
            }
        });
    }
    let mut tally = Tally::default();
    for r in set.join_all().await {
        tally.add(r);
    }
    tally.elapsed = t0.elapsed();
    tally
}

/// The liveclip-server process, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(location: &Path) -> Self {
        let exe = env!("CARGO_BIN_EXE_liveclip-server");
        let mut child = Command::new(exe)
            .arg("--location")
            .arg(location)
            .args(["--http-address", "127.0.0.1:0"])
            .args(["--max-concurrent-clips", &WORKERS.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{exe}: {e}"));
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        // "… liveclip-server: stream cam at http://127.0.0.1:PORT/cam/"
        let base = loop {
            let line = lines
                .next()
                .and_then(|l| l.ok())
                .unwrap_or_else(|| panic!("liveclip-server exited: {:?}", child.wait()));
            log.lock().unwrap().push(line.clone());
            if let Some((_, url)) = line.split_once(" stream cam at ") {
                break url.trim_end_matches("/cam/").to_string();
            }
        };
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self { child, base, log }
    }

    /// Panics (with its log) if the server is gone.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "liveclip-server exited under load ({status}):\n{}",
                self.log.lock().unwrap().join("\n")
            );
        }
    }

    /// Peak resident memory and anonymous (not file-backed) resident
    /// memory now, MB. The mapped segments count in the first.
    fn memory_mb(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<f64> {
            let kb: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kb / 1024.0)
        };
        Some((field("VmHWM:")?, field("RssAnon:")?))
    }
}

/// The 1-minute load average: the benchmark shares the machine.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signals the child this benchmark started, by its id.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Reads every file of the session once, so that both targets start with
/// the recording in the page cache.
fn warm(session: &Path) -> u64 {
    let mut bytes = 0;
    let mut dirs: Vec<PathBuf> = vec![session.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                bytes += std::fs::read(&path).map(|b| b.len() as u64).unwrap_or(0);
            }
        }
    }
    bytes
}

/// One clip from both targets: the same bytes, decoded by ffmpeg without
/// an error, 10 s long.
fn check_decode(runtime: &tokio::runtime::Runtime, bases: [&str; 2], mid: &str) {
    let ms = 123_456;
    let [a, b] = bases.map(|base| {
        runtime.block_on(async {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            fetch(&client, &clip_uri(base, mid, ms))
                .await
                .unwrap_or_else(|e| panic!("{base}: {e}"))
                .expect("not busy when alone")
        })
    });
    assert!(a == b, "the targets' clips differ");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &a).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    let frames = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(frames, "300", "video frames of a 10 s 30 fps clip");
    println!(
        "check: the clip at {}.{:03} s is byte-identical from both ({} bytes), \
         ffmpeg decodes it without an error, {frames} video frames",
        ms / 1000,
        ms % 1000,
        a.len()
    );
}

fn main() {
    let location = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input/rec-600s");
    let stream = location.join("cam");
    let session = common::recorded_session(&stream)
        .expect("run `cargo bench --bench clip_cut` first: it records the input");
    let mid = session.file_name().unwrap().to_string_lossy().into_owned();
    let service = ClipService::new(
        stream.clone(),
        Arc::new(LiveIndex::default()),
        Limits {
            max_clip: 60 * NS,
            max_preview: 300 * NS,
            workers: WORKERS,
            queue: WORKERS * 16,
            ..Limits::default()
        },
    );
    let registration = gstliveclip::http::register(
        "127.0.0.1:0",
        None,
        gstliveclip::http::Endpoint::Stream {
            stream_id: "cam".into(),
            service,
            web_root: None,
        },
    )
    .unwrap();
    let element = format!("http://{}", registration.bound);
    let mut server = Server::start(&location);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let load_before = loadavg();
    let warmed = warm(&session);
    check_decode(&runtime, [&element, &server.base], &mid);
    println!(
        "clip.mp4 load: 10 s 1080p clips at random starts of a {:.0} MB recording, \
         {PER_LEVEL} requests per level and target in each of {ROUNDS} rounds, \
         {WORKERS} clip workers and {} queued per target, loopback",
        warmed as f64 / 1e6,
        WORKERS * 16
    );
    println!(
        "{:>11} {:>15} {:>9} {:>7} {:>9} {:>9} {:>6} {:>6}",
        "concurrency", "target", "clips/s", "GB/s", "p50 ms", "p99 ms", "busy", "errors"
    );
    let mut seed = 0x1234_5678u64;
    let mut problems = Vec::new();
    for concurrency in LEVELS {
        let mut tallies = [Tally::default(), Tally::default()];
        for round in 0..ROUNDS {
            let starts: Vec<u64> = (0..PER_LEVEL)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 33) % 580_000
                })
                .collect();
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let base = if i == 0 { &element } else { &server.base };
                let t = runtime.block_on(load(base, &mid, &starts, concurrency));
                tallies[i].add(t);
                server.check_alive();
            }
        }
        // The same start gives the same clip from both.
        let mismatched = tallies[0]
            .sizes
            .iter()
            .filter(|(ms, size)| tallies[1].sizes.get(ms).is_some_and(|s| s != *size))
            .count();
        if mismatched > 0 {
            problems.push(format!(
                "{concurrency} clients: {mismatched} starts with different sizes"
            ));
        }
        let mut stats = [[0.0; 4]; 2];
        for (i, name) in ["element", "liveclip-server"].iter().enumerate() {
            let t = &mut tallies[i];
            stats[i] = t.stats();
            let [rate, gbps, p50, p99] = stats[i];
            println!(
                "{:>11} {:>15} {:>9.1} {:>7.3} {:>9.1} {:>9.1} {:>6} {:>6}",
                concurrency,
                name,
                rate,
                gbps,
                p50,
                p99,
                t.busy,
                t.errors.len()
            );
            if let Some(first) = t.errors.first() {
                problems.push(format!(
                    "{name}, {concurrency} clients: {} errors, the first: {first}",
                    t.errors.len()
                ));
            }
        }
        let r = |k: usize| stats[1][k] / stats[0][k];
        println!(
            "{:>11} {:>15} {:>8.2}× {:>6.2}× {:>8.2}× {:>8.2}×",
            concurrency,
            "server/element",
            r(0),
            r(1),
            r(2),
            r(3)
        );
    }
    if let Some((peak, anon)) = server.memory_mb() {
        println!("liveclip-server: peak RSS {peak:.0} MB, anonymous RSS at the end {anon:.0} MB");
    }
    println!("load average {load_before} before, {} after", loadavg());
    drop(server);
    assert!(
        problems.is_empty(),
        "wrong answers:\n{}",
        problems.join("\n")
    );
    drop(registration);
}
