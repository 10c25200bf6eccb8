// SPDX-License-Identifier: MPL-2.0
//! What the benchmarks share: the cached 60 s 1080p H.264 + AAC input.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gst::prelude::*;

pub mod hls_record;

/// Where the benchmarks' inputs and recordings are cached:
/// target/bench-input/ (made).
pub fn input_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 60 s of 1920x1080 30 fps H.264 High 4:2:0 8-bit (6 Mb/s, 2 B-frames,
/// GOP 60) + AAC, encoded once and cached under target/bench-input/. (The
/// input before 2026-12-03 was 4:4:4 10-bit, what x264enc picks for
/// videotestsrc without a format: slower to decode than any camera's.)
pub fn input() -> PathBuf {
    let dir = input_dir();
    let path = dir.join("1080p-60s-420.mp4");
    if path.exists() {
        return path;
    }
    eprintln!(
        "encoding the 60 s 1080p input once (cached at {})",
        path.display()
    );
    let tmp = dir.join("1080p-60s-420.tmp.mp4");
    let desc = format!(
        "mp4mux name=mux ! filesink location={tmp} \
         videotestsrc num-buffers=1800 pattern=smpte ! video/x-raw,width=1920,height=1080,framerate=30/1 ! \
           timeoverlay ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast bitrate=6000 bframes=2 key-int-max=60 ! h264parse ! queue ! mux. \
         audiotestsrc num-buffers=2813 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! mux.",
        tmp = tmp.display()
    );
    run_to_eos(&gst::parse::launch(&desc).unwrap());
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub fn run_to_eos(pipeline: &gst::Element) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The median of a few measurements.
pub fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

/// User + system CPU time of this process so far (all threads).
pub fn self_cpu() -> std::time::Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU seconds and wall seconds of a command, by GNU time.
pub fn cpu_time(cmd: &mut std::process::Command) -> (f64, f64) {
    cpu_time_until(cmd, || false)
}

/// Like [`cpu_time`], for a command that may not exit by itself once its
/// work is done (`done` says so): it is then interrupted, and the CPU time it
/// used is what it spent working (an idle process adds nothing).
pub fn cpu_time_until(cmd: &mut std::process::Command, done: impl Fn() -> bool) -> (f64, f64) {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut child = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%U %S %e"])
        .arg(program)
        .args(args)
        .envs(envs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/time");
    let mut done_since: Option<std::time::Instant> = None;
    let mut interrupted = false;
    while child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if !interrupted && done() {
            let since = *done_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > std::time::Duration::from_secs(2) {
                // Interrupt the measured process (the child of time).
                let _ = std::process::Command::new("pkill")
                    .args(["-INT", "-P", &child.id().to_string()])
                    .status();
                interrupted = true;
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        interrupted || out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    let v: Vec<f64> = last
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 3, "{err}");
    (v[0] + v[1], v[2])
}

/// The session of a stream directory that has a replay playlist, if any.
pub fn recorded_session(stream: &Path) -> Option<PathBuf> {
    std::fs::read_dir(stream)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("replay.m3u8").exists())
}

/// A 60 s 1080p30 H.264 High 4:2:0 input with moving content
/// (`videotestsrc pattern=ball` + `timeoverlay`, x264enc veryfast, 6 Mb/s,
/// 2 B-frames, GOP 60) + AAC, and its hlsclipsink recording (6 s
/// segments): the file and the session directory, made once under
/// target/bench-input/.
pub fn ball_recording() -> (PathBuf, PathBuf) {
    let dir = input_dir();
    let input = dir.join("1080p420-60s.mp4");
    if !input.exists() {
        let tmp = dir.join("1080p420-60s.tmp.mp4");
        let desc = format!(
            "mp4mux name=mux ! filesink location={tmp} \
             videotestsrc num-buffers=1800 pattern=ball ! \
               video/x-raw,format=I420,width=1920,height=1080,framerate=30/1 ! \
               timeoverlay font-desc=\"Sans 60\" ! x264enc speed-preset=veryfast bitrate=6000 bframes=2 \
               key-int-max=60 ! video/x-h264,profile=high ! h264parse ! queue ! mux. \
             audiotestsrc num-buffers=2813 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
               voaacenc ! aacparse ! queue ! mux.",
            tmp = tmp.display()
        );
        run_to_eos(&gst::parse::launch(&desc).unwrap());
        std::fs::rename(&tmp, &input).unwrap();
    }
    let session = recorded_once(&input, &dir.join("rec-exact"));
    (input, session)
}

/// `input` (an MP4 of H.264 + AAC) recorded by hlsclipsink (stream `cam`,
/// 6 s segments) under `rec`, once: the session directory.
pub fn recorded_once(input: &Path, rec: &Path) -> PathBuf {
    let stream = rec.join("cam");
    if recorded_session(&stream).is_none() || !rec.join("done").exists() {
        let _ = std::fs::remove_dir_all(rec);
        eprintln!(
            "recording {} once (cached at {})",
            input.display(),
            rec.display()
        );
        let desc = format!(
            "filesrc location={} ! qtdemux name=d \
             hlsclipsink name=h location={} stream-id=cam target-duration=6 \
             d.video_0 ! queue ! h264parse ! h.video \
             d.audio_0 ! queue ! aacparse ! h.audio",
            input.display(),
            rec.display()
        );
        run_to_eos(&gst::parse::launch(&desc).unwrap());
        std::fs::write(rec.join("done"), b"").unwrap();
    }
    recorded_session(&stream).unwrap()
}
