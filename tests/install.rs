// SPDX-License-Identifier: MPL-2.0
//! `meson setup && meson compile && meson install` puts the plugin where
//! GStreamer finds it, with every element documented by gst-inspect-1.0.
//! Installs into a temporary prefix, reusing the tests' cargo build.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn meson_installs_a_plugin_gst_inspect_finds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("build");
    let prefix = tmp.path().join("prefix");
    run(Command::new("meson")
        .arg("setup")
        .arg(&build)
        .arg(root)
        .arg(format!("--prefix={}", prefix.display()))
        .args(["-Dbuildtype=debug"])
        .arg(format!(
            "-Dcargo-target-dir={}",
            root.join("target").display()
        )));
    run(Command::new("meson").args(["compile", "-C"]).arg(&build));
    run(Command::new("meson").args(["install", "-C"]).arg(&build));
    let installed = walk(&prefix)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "libgstliveclip.so"))
        .expect("the plugin is installed under the prefix");
    let dir = installed.parent().unwrap();
    assert!(dir.ends_with("gstreamer-1.0"), "{}", dir.display());
    // The clip server, in bindir, runs.
    let server = prefix.join("bin/liveclip-server");
    let help = run(Command::new(&server).arg("--help"));
    assert!(help.contains("--location"), "{help}");
    let inspect = |what: &str| {
        run(Command::new("gst-inspect-1.0")
            .env("GST_PLUGIN_PATH", dir)
            .env("GST_REGISTRY", tmp.path().join("registry.bin"))
            .arg(what))
    };
    let plugin = inspect("liveclip");
    for element in [
        "hlsclipsink",
        "periodicclipper",
        "thumbnailer",
        "motionclipenc",
    ] {
        assert!(plugin.contains(element), "{plugin}");
    }
    let sink = inspect("hlsclipsink");
    for item in [
        "http-address",
        "max-clip-duration",
        "get-preview-manifest",
        "get-clip-manifest",
        "clip-mp4",
        "Element Actions",
    ] {
        assert!(sink.contains(item), "{item} missing from:\n{sink}");
    }
    let clipper = inspect("periodicclipper");
    for item in [
        "webhook-url",
        "clip-now",
        "start-periodic",
        "format-location-full",
    ] {
        assert!(clipper.contains(item), "{item} missing from:\n{clipper}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
