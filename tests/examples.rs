// SPDX-License-Identifier: MPL-2.0
//! The examples a user copies run as documented: the Python (gi) script and
//! the Rust program each ask for three clips on a live pipeline and get them.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn check(output: std::process::Output, dir: &Path) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The three clips asked for; when the last request's keyframe comes
    // just before the example's EOS, what follows it is one more clip
    // (trigger "eos").
    let ready: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("clip ready"))
        .collect();
    let on_demand = ready.iter().filter(|l| l.contains("on-demand")).count();
    assert_eq!(on_demand, 3, "{stdout}");
    assert!(
        ready
            .iter()
            .all(|l| l.contains("on-demand") || l.contains("eos")),
        "{stdout}"
    );
    for i in 0..3 {
        let clip = dir.join(format!("moment-{i:03}.mp4"));
        let errors = decode_errors(&clip);
        assert!(errors.is_empty(), "{}: {errors}", clip.display());
        let st = streams(&clip);
        assert!(stream(&st, "video").is_some() && stream(&st, "audio").is_some());
    }
}

#[test]
fn python_example_clips_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clip_now.py");
    // Debian's interpreter, which has python3-gst-1.0.
    let output = Command::new("/usr/bin/python3")
        .arg("-u")
        .arg(script)
        .arg(dir.path())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .expect("python3 runs");
    check(output, dir.path());
}

#[test]
fn rust_example_clips_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/clip_now");
    assert!(example.exists(), "cargo test builds the examples");
    let output = Command::new(example).arg(dir.path()).output().unwrap();
    check(output, dir.path());
}

/// The instant-clip examples: a preview, a clip at a position in it, and
/// "the last 4 s", each MP4 decoded and of the asked length.
fn check_instant(output: std::process::Output, dir: &Path) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("preview of session"), "{stdout}");
    assert!(stdout.contains("no new file"), "{stdout}");
    assert_eq!(stdout.matches("clip done:").count(), 2, "{stdout}");
    for (name, seconds) in [("moment.mp4", 2.0), ("last-4s.mp4", 4.0)] {
        let clip = dir.join(name);
        let errors = decode_errors(&clip);
        assert!(errors.is_empty(), "{}: {errors}", clip.display());
        let st = streams(&clip);
        let v = stream(&st, "video").expect("video");
        assert!(
            (v.duration - seconds).abs() <= 1.0 / 30.0 + 1e-3,
            "{name}: {v:?}"
        );
        assert!(stream(&st, "audio").is_some());
    }
}

#[test]
fn python_instant_clip_example() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/instant_clip.py");
    let output = Command::new("/usr/bin/python3")
        .arg("-u")
        .arg(script)
        .arg(dir.path())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .expect("python3 runs");
    check_instant(output, dir.path());
}

#[test]
fn rust_instant_clip_example() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/instant_clip");
    assert!(example.exists(), "cargo test builds the examples");
    let output = Command::new(example).arg(dir.path()).output().unwrap();
    check_instant(output, dir.path());
}
