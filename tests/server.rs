// SPDX-License-Identifier: MPL-2.0
//! `liveclip-server`: the HTTP API over a recordings directory without a
//! pipeline, for recordings that ended and for one another process is
//! still writing; its options, and SIGTERM.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

/// The server process, stopped however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_liveclip-server"));
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn frames_of(body: &[u8], dir: &std::path::Path, name: &str) -> Vec<u32> {
    let out = dir.join(name);
    std::fs::write(&out, body).unwrap();
    let errors = decode_errors(&out);
    assert!(errors.is_empty(), "{name}: {errors}");
    frame_numbers(&out)
}

#[test]
fn serves_ended_and_growing_recordings_without_a_pipeline() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().join("rec");
    std::fs::create_dir_all(&loc).unwrap();
    // A recording that ended.
    let p = numbered_av(&loc, "target-duration=1", 6, 30, false);
    play_to_eos(&p, Duration::from_secs(60));
    p.set_state(gst::State::Null).unwrap();
    let media_id = session_dirs(&loc.join("cam"))[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let port = free_port();
    let web_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/ui");
    let _server = Server(
        server(&[
            "--location",
            &loc.display().to_string(),
            "--http-address",
            &format!("127.0.0.1:{port}"),
            "--web-root",
            &web_root.display().to_string(),
            "--rescan",
            "1",
        ])
        .spawn()
        .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "the server listens"
    );

    // The ended session: its replay, a clip with exactly the frames asked,
    // the sessions list, the page, errors as JSON.
    let r = get(&format!("{base}/cam/manifest/video.m3u8"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("stream-media-id").as_deref(),
        Some(media_id.as_str())
    );
    let replay = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    assert!(replay.end_list);
    let seg = get(&format!(
        "{base}/{}",
        replay.segments[1].uri.trim_start_matches("../../")
    ));
    assert_eq!(seg.status, 200);
    let r = get(&format!("{base}/cam/clip.mp4?time=2s&duration=2s"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        frames_of(&r.body, dir.path(), "ended.mp4"),
        (60..120).collect::<Vec<u32>>()
    );
    let r = get(&format!("{base}/cam/sessions"));
    assert_eq!(r.json()["sessions"][0]["media_id"], media_id.as_str());
    let r = get(&format!("{base}/ui/"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<html"), "the page");
    let r = get(&format!("{base}/cam/clip.mp4?time=20s&duration=2s"));
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(r.json()["status"], 416);
    let r = get(&format!(
        "{base}/cam/thumbnails/thumbnail.jpg?time=3s&width=160"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));

    // A stream another pipeline records now (here, in this process, with
    // no HTTP of its own): the server finds it, and its clips reach the
    // segment being written, within a GOP of the newest frame.
    let audio_frames = (20.0 * 48_000.0 / 1024.0_f64).ceil() as u32;
    let element_port = free_port();
    let live = launch(&format!(
        "hlsclipsink name=h location={} stream-id=live target-duration=2 \
           http-address=127.0.0.1:{element_port} \
         appsrc name=src format=time is-live=true \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! \
           x264enc speed-preset=ultrafast key-int-max=15 tune=zerolatency ! h264parse ! queue ! h.video \
         audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 is-live=true ! \
           audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! h.audio",
        loc.display()
    ));
    let pushed = feed_numbered_counted(&live, 20 * FPS, true);
    play_until_segments(&live, 2);
    assert!(
        wait_for(Duration::from_secs(10), || {
            get(&format!("{base}/live/manifest/video.m3u8")).status == 200
        }),
        "the new stream is served"
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let newest = pushed.load(Ordering::SeqCst) as i64 - 1;
        let r = get(&format!("{base}/live/clip.mp4?duration=1s"));
        assert_eq!(r.status, 200, "{}", r.text());
        let frames = frames_of(&r.body, dir.path(), "live.mp4");
        let behind = (newest - *frames.last().unwrap() as i64) as f64 / FPS as f64;
        eprintln!("a clip of the live edge from the server ends {behind:.3} s behind");
        assert!(
            behind <= 0.5 + 0.3,
            "the clip ends {behind:.3} s behind the newest frame (GOP 0.5 s)"
        );
        assert_eq!(frames.len(), 30);
    }
    // Its playlist grows as the recording does, and has no ENDLIST yet.
    let r = get(&format!("{base}/live/manifest/video.m3u8"));
    let p = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    assert!(!p.end_list);

    // What is recorded already, the server and the element's own listener
    // answer alike, to the byte; so does a second server on the storage.
    let port2 = free_port();
    let _second = Server(
        server(&[
            "--location",
            &loc.display().to_string(),
            "--http-address",
            &format!("127.0.0.1:{port2}"),
        ])
        .spawn()
        .unwrap(),
    );
    assert!(wait_for(Duration::from_secs(30), || {
        get_ok(&format!("http://127.0.0.1:{port2}/live/sessions"))
    }));
    for query in [
        "clip.mp4?time=0.5s&duration=1.5s",
        "manifest/clip.m3u8?time=0.5s&duration=1.5s",
        "clip.mp4?time=1s&duration=1s&accuracy=keyframe",
    ] {
        let element = get(&format!("http://127.0.0.1:{element_port}/live/{query}"));
        assert_eq!(element.status, 200, "{query}: {}", element.text());
        for b in [&base, &format!("http://127.0.0.1:{port2}")] {
            let r = get(&format!("{b}/live/{query}"));
            assert_eq!(r.status, 200, "{query}: {}", r.text());
            assert!(r.body == element.body, "{query}: the same bytes from {b}");
        }
    }
    // A marker added through the recording element: the server lists it
    // (the session is live: another process records it) and writes it
    // into the clip manifests it makes; it can't add one itself.
    let r = post_json(
        &format!("http://127.0.0.1:{element_port}/live/markers"),
        r#"{"id":"m1","time":"1s","duration":1}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let listed = get(&format!("{base}/live/markers")).json();
    assert_eq!(listed["live"], true, "{listed}");
    assert_eq!(listed["markers"][0]["id"], "m1", "{listed}");
    let r = get(&format!("{base}/live/manifest/clip.m3u8?marker=m1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("#EXT-X-DATERANGE:ID=\"m1\""),
        "{}",
        r.text()
    );
    let r = post_json(&format!("{base}/live/markers"), "{}");
    assert_eq!(r.status, 404, "{}", r.text());
    // The preview of the live session too, whenever no segment closed
    // between the element's answers around the server's.
    let preview = "manifest/video.m3u8?duration=4s";
    let same = (0..20).any(|_| {
        let before = get(&format!("http://127.0.0.1:{element_port}/live/{preview}"));
        let served = get(&format!("{base}/live/{preview}"));
        let after = get(&format!("http://127.0.0.1:{element_port}/live/{preview}"));
        assert_eq!(served.status, 200, "{}", served.text());
        if before.body != after.body {
            return false;
        }
        assert_eq!(served.text(), before.text(), "the server's preview");
        assert_eq!(
            served.header("preview-start-seconds"),
            before.header("preview-start-seconds")
        );
        true
    });
    assert!(same, "a preview compared while no segment closed");
    live.set_state(gst::State::Null).unwrap();

    // SIGTERM while clips are being answered: it ends cleanly.
    let url = format!("{base}/cam/clip.mp4?time=0s&duration=5s");
    let busy = std::thread::spawn(move || {
        for _ in 0..40 {
            let _ = std::panic::catch_unwind(|| get(&url));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut first = _server;
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(first.0.id() as i32, libc::SIGTERM);
    }
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = first.0.try_wait().unwrap() {
            break status;
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "SIGTERM ends it");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    busy.join().unwrap();
}

/// Whether `url` answers 200 (false while nothing listens).
fn get_ok(url: &str) -> bool {
    std::panic::catch_unwind(|| get(url).status == 200).unwrap_or(false)
}

#[test]
fn options_help_and_sigterm() {
    let out = server(&["--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--location",
        "--http-address",
        "--token",
        "--web-root",
        "--max-concurrent-clips",
        "--max-clip-duration",
        "--max-preview-duration",
        "--rescan",
    ] {
        assert!(help.contains(option), "--help documents {option}");
    }
    let out = server(&["--location"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = server(&["--colour", "red"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option --colour"));
    let out = server(&["--location", "/nonexistent/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A token is asked for; SIGTERM stops it cleanly.
    let dir = tempfile::tempdir().unwrap();
    let cam = dir.path().join("cam");
    std::fs::create_dir_all(&cam).unwrap();
    std::fs::write(
        cam.join("sessions.json"),
        r#"{"stream_id":"cam","sessions":[]}"#,
    )
    .unwrap();
    let port = free_port();
    let mut child = server(&[
        "--location",
        &dir.path().display().to_string(),
        "--http-address",
        &format!("127.0.0.1:{port}"),
        "--token",
        "s3cret",
    ])
    .spawn()
    .unwrap();
    assert!(wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/cam/sessions")).status, 401);
    assert_eq!(
        get(&format!("{base}/cam/sessions?token=s3cret")).status,
        200
    );
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let asked = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "SIGTERM ends it");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("stream cam at http://127.0.0.1"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
