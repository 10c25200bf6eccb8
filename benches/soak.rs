// SPDX-License-Identifier: MPL-2.0
//! Soak: a live recording (gst-launch-1.0 with hlsclipsink, 640x360 30 fps
//! H.264 + AAC, 2 s segments, HTTP API on loopback) for `SOAK_SECONDS`
//! (default 300; the recorded run used 1800), killed with SIGKILL at random moments (every 60–180 s)
//! and started again at once (the reconnect window continues its session),
//! under a mixed load of normal and hostile HTTP requests. Reports requests
//! served and errors by kind, media recorded against the time the pipeline
//! ran, and the recording process's RSS and open descriptors over time.
//!
//! `SOAK_SECONDS=1800 cargo bench --bench soak` for the 30-minute run.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PORT: u16 = 18_791;
const FPS: f64 = 30.0;

/// Outcomes by kind ("200", "400", "connect-error", ...) for normal and
/// hostile requests.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<(String, String), u64>>);

impl Tally {
    fn add(&self, class: &str, outcome: String) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((class.to_string(), outcome))
            .or_default() += 1;
    }
}

/// One request over its own connection; the status, or what went wrong.
fn request(raw: &[u8], timeout: Duration) -> String {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", PORT)) else {
        return "connect-error".into();
    };
    let _ = c.set_read_timeout(Some(timeout));
    let _ = c.set_write_timeout(Some(timeout));
    if c.write_all(raw).is_err() {
        return "write-error".into();
    }
    let mut head = [0u8; 12];
    match c.read_exact(&mut head) {
        Ok(()) => {
            // Read the rest so that bodies are really sent.
            let mut sink = Vec::new();
            let _ = c.read_to_end(&mut sink);
            String::from_utf8_lossy(&head[9..12]).into_owned()
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => "timeout".into(),
        Err(_) => "closed".into(),
    }
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n").into_bytes()
}

fn normal_load(stop: Arc<AtomicBool>, tally: Arc<Tally>, seed: u64) {
    let targets = [
        "/cam/manifest/video.m3u8",
        "/cam/manifest/video.m3u8?duration=30s",
        "/cam/clip.mp4?duration=4s",
        "/cam/manifest/clip.m3u8?duration=10s",
        "/cam/sessions",
        "/",
    ];
    let mut x = seed;
    while !stop.load(Ordering::Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = targets[(x % targets.len() as u64) as usize];
        tally.add("normal", request(&get(t), Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hostile_load(stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let long = get(&format!("/cam/{}", "a".repeat(100_000)));
    let mut many = String::from("GET /cam/sessions HTTP/1.1\r\nhost: x\r\n");
    for i in 0..300 {
        many.push_str(&format!("x-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    let cases: Vec<Vec<u8>> = vec![
        long,
        many.into_bytes(),
        b"GARBAGE\r\n\r\n".to_vec(),
        b"\r\n".to_vec(),
        get("/cam/clip.mp4?duration=1s&duration=2s"),
        get("/cam/manifest/video.m3u8?duration=+5"),
        get("/cam/../../etc/passwd"),
        get("/cam/clip.mp4?time=99999h&duration=5s"),
        get("/nobody/manifest/video.m3u8"),
        b"DELETE / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
    ];
    let mut i = 0usize;
    // Slow clients that trickle their headers, renewed as they are cut.
    let mut slow: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let case = &cases[i % cases.len()];
        tally.add("hostile", request(case, Duration::from_secs(15)));
        i += 1;
        slow.retain_mut(|c| c.write_all(b"x-slow: 1\r\n").is_ok());
        while slow.len() < 100 {
            match TcpStream::connect(("127.0.0.1", PORT)) {
                Ok(mut c) => {
                    let _ = c.write_all(b"GET /cam/sessions HTTP/1.1\r\n");
                    slow.push(c);
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(location: &Path, plugin: &Path) -> Child {
    Command::new("gst-launch-1.0")
        .env("GST_PLUGIN_PATH", plugin)
        .args(["-q", "-e"])
        .args(
            format!(
                "hlsclipsink name=h location={} stream-id=cam target-duration=2 reconnect-window=60 \
                 http-address=127.0.0.1:{PORT} \
                 videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 ! \
                   x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 ! \
                   h264parse ! queue ! h.video \
                 audiotestsrc is-live=true samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
                   voaacenc ! aacparse ! queue ! h.audio",
                location.display()
            )
            .split_whitespace(),
        )
        .spawn()
        .expect("gst-launch-1.0")
}

/// RSS (kB) and open descriptors of a process.
fn usage(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// Seconds of media in the replay playlists of the stream's sessions.
fn recorded_seconds(stream: &Path) -> f64 {
    let Ok(dirs) = std::fs::read_dir(stream) else {
        return 0.0;
    };
    dirs.filter_map(|e| e.ok())
        .map(|e| e.path().join("replay.m3u8"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|t| m3u8_rs::parse_media_playlist_res(&t).ok())
        .map(|pl| {
            pl.segments
                .iter()
                .map(|s| f64::from(s.duration))
                .sum::<f64>()
        })
        .sum()
}

fn plugin_dir(root: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    let dir = root.join("plugin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        profile.join("libgstliveclip.so"),
        dir.join("libgstliveclip.so"),
    )
    .expect("the plugin is built next to the bench (cargo bench builds it)");
    dir
}

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    let _ = std::fs::remove_dir_all(&root);
    let location = root.join("rec");
    std::fs::create_dir_all(&location).unwrap();
    let plugin = plugin_dir(&root);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut load = Vec::new();
    for k in 0..4u64 {
        let (stop, tally) = (stop.clone(), tally.clone());
        load.push(std::thread::spawn(move || {
            normal_load(stop, tally, 0x9e37_79b9 + k)
        }));
    }
    {
        let (stop, tally) = (stop.clone(), tally.clone());
        load.push(std::thread::spawn(move || hostile_load(stop, tally)));
    }

    let started = Instant::now();
    let mut ran = 0.0f64;
    let mut kills = 0u32;
    let mut samples: Vec<(u64, u64, usize)> = Vec::new();
    let mut x = 0x2545_f491u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut child = spawn(&location, &plugin);
        let run_start = Instant::now();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let left = Duration::from_secs(seconds).saturating_sub(started.elapsed());
        let life = Duration::from_secs(60 + x % 121).min(left);
        let mut next_sample = Instant::now();
        while run_start.elapsed() < life {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the recording process ended by itself: {status}");
            }
            if Instant::now() >= next_sample {
                if let Some((rss, fds)) = usage(child.id()) {
                    samples.push((started.elapsed().as_secs(), rss, fds));
                }
                next_sample += Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        ran += run_start.elapsed().as_secs_f64();
        if started.elapsed() < Duration::from_secs(seconds) {
            let _ = child.kill();
            kills += 1;
        } else {
            // The last run ends with EOS (SIGINT with -e).
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        let _ = child.wait();
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }

    let recorded = recorded_seconds(&location.join("cam"));
    println!("soak: {seconds} s, {kills} SIGKILLs and restarts");
    println!(
        "media: {recorded:.1} s recorded of {ran:.1} s the pipeline ran; {:.0} frames short \
         ({:.1} per restart: startup to the first keyframe, and the GOP not yet synced at a kill)",
        (ran - recorded) * FPS,
        (ran - recorded) * FPS / f64::from(kills + 1)
    );
    println!("requests:");
    for ((class, outcome), n) in tally.0.lock().unwrap().iter() {
        println!("  {class:8} {outcome:14} {n}");
    }
    println!("recording process (time s, RSS kB, fds):");
    for (t, rss, fds) in samples.iter().step_by((samples.len() / 20).max(1)) {
        println!("  {t:5} {rss:8} {fds:5}");
    }
    if let (Some(max_rss), Some(max_fds)) = (
        samples.iter().map(|s| s.1).max(),
        samples.iter().map(|s| s.2).max(),
    ) {
        println!("max RSS {max_rss} kB, max fds {max_fds}");
    }
}
