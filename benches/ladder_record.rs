// SPDX-License-Identifier: MPL-2.0
//! Records the same pre-encoded three-rendition ladder (60 s of 1080p,
//! 720p and 360p H.264 with aligned keyframes, and AAC), as fast as
//! possible: one hlsclipsink with three video pads (one session, aligned
//! segments, master.m3u8), three separate hlsclipsinks (one per rendition,
//! the audio in the first), and three hlssink2 (the GStreamer per-rendition
//! sinks; hlssink3 is not on this machine). CPU time is measured against
//! the floor (demux and parse into fakesink).
//!
//! `cargo bench --bench ladder_record`

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1080p input scaled to `height` and encoded with keyframes on the
/// same frames (every 60th, no scene cuts), video only; cached next to it.
fn rung(input: &Path, width: u32, height: u32) -> PathBuf {
    let path = input.with_file_name(format!("{height}p-60s-video.mp4"));
    if path.exists() {
        return path;
    }
    eprintln!("encoding the {height}p rung once ({})", path.display());
    let tmp = path.with_extension("tmp.mp4");
    let desc = format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoscale ! \
         video/x-raw,width={width},height={height} ! \
         x264enc speed-preset=ultrafast bitrate={} bframes=2 key-int-max=60 option-string=scenecut=0 ! \
         h264parse ! mp4mux ! filesink location={}",
        input.display(),
        width * height * 3 / 1000,
        tmp.display()
    );
    common::run_to_eos(&gst::parse::launch(&desc).unwrap());
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn main() {
    gst::init().unwrap();
    let top = common::input();
    let inputs = [top.clone(), rung(&top, 1280, 720), rung(&top, 640, 360)];
    let out = tempfile::tempdir().unwrap();
    let plugin_dir = out.path().join("plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().join("libgstliveclip.so");
    std::fs::copy(&built, plugin_dir.join("libgstliveclip.so")).unwrap();
    let q = "queue max-size-time=0 max-size-buffers=0 max-size-bytes=0";
    // `sinks(i)` is where video rendition i goes, `audio` the AAC's.
    let gst = |head: &str, sinks: &dyn Fn(usize) -> String, audio: &str| {
        let mut desc = head.to_string();
        for (i, input) in inputs.iter().enumerate() {
            desc += &format!(
                " filesrc location={} ! qtdemux name=d{i} d{i}.video_0 ! {q} ! h264parse ! {}",
                input.display(),
                sinks(i)
            );
        }
        desc += &format!(" d0.audio_0 ! {q} ! aacparse ! {audio}");
        let mut c = Command::new("gst-launch-1.0");
        c.env("GST_PLUGIN_PATH", &plugin_dir)
            .arg("-q")
            .args(desc.split_whitespace());
        c
    };
    let dir = |name: &str| {
        let d = out.path().join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let names = ["1080p", "720p", "360p"];
    let cases = [
        "floor (demux+parse ! fakesink)",
        "hlsclipsink, one ladder session",
        "3 hlsclipsinks",
        "3 hlssink2",
    ];
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>)> =
        cases.iter().map(|&n| (n, Vec::new(), Vec::new())).collect();
    for _ in 0..RUNS {
        for (i, result) in results.iter_mut().enumerate() {
            let mut cmd = match i {
                0 => gst("", &|_| "fakesink".into(), "fakesink"),
                1 => {
                    let d = dir("ladder");
                    let mut head = format!(
                        "hlsclipsink name=h location={} stream-id=bench target-duration=6 \
                         send-keyframe-requests=false",
                        d.display()
                    );
                    for (v, name) in names.iter().enumerate() {
                        head += &format!(" video_{v}::rendition={name}");
                    }
                    gst(&head, &|v| format!("h.video_{v}"), "h.audio_0")
                }
                2 => {
                    let d = dir("separate");
                    let head = (0..3)
                        .map(|v| {
                            format!(
                                "hlsclipsink name=h{v} location={} stream-id={} target-duration=6 \
                                 send-keyframe-requests=false",
                                d.display(),
                                names[v]
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    gst(&head, &|v| format!("h{v}.video"), "h0.audio")
                }
                _ => {
                    let d = dir("hlssink2");
                    let head = (0..3)
                        .map(|v| {
                            let r = d.join(names[v]);
                            std::fs::create_dir_all(&r).unwrap();
                            format!(
                                "hlssink2 name=h{v} location={}/segment%05d.ts \
                                 playlist-location={}/playlist.m3u8 target-duration=6 max-files=0 \
                                 playlist-length=0 send-keyframe-requests=false",
                                r.display(),
                                r.display()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    gst(&head, &|v| format!("h{v}.video"), "h0.audio")
                }
            };
            // hlssink2 (GStreamer 1.22) sometimes stalls at EOS after writing
            // everything; its playlists' ENDLIST says the work is done.
            let h2 = out.path().join("hlssink2");
            let (cpu, wall) = common::cpu_time_until(&mut cmd, || {
                i == 3
                    && names.iter().all(|n| {
                        std::fs::read_to_string(h2.join(n).join("playlist.m3u8"))
                            .is_ok_and(|p| p.contains("#EXT-X-ENDLIST"))
                    })
            });
            result.1.push(cpu);
            result.2.push(wall);
        }
    }

    // The ladder plays and is aligned: every rendition has every frame and
    // the same segment durations.
    let session = std::fs::read_dir(out.path().join("ladder/bench"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(session.join("master.m3u8").exists());
    let mut timelines = Vec::new();
    for name in names {
        let replay = session.join(name).join("replay.m3u8");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
            .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
            .arg(&replay)
            .output()
            .unwrap();
        let counted = String::from_utf8_lossy(&probe.stdout);
        assert_eq!(
            counted.split_whitespace().next(),
            Some("1800"),
            "{name}: {counted}"
        );
        let p = m3u8_rs::parse_media_playlist_res(&std::fs::read(&replay).unwrap()).unwrap();
        timelines.push(
            p.segments
                .iter()
                .map(|s| format!("{:.3}", s.duration))
                .collect::<Vec<_>>(),
        );
    }
    assert!(timelines.windows(2).all(|w| w[0] == w[1]), "{timelines:?}");

    let floor = median(results[0].1.clone());
    println!("ladder_record: 60 s of 1080p + 720p + 360p H.264 + AAC, median of {RUNS} runs");
    println!(
        "  {:<34} {:>8} {:>9} {:>8} {:>15}",
        "", "CPU s", "wall s", "vs floor", "above floor s"
    );
    for (name, cpu, wall) in &results {
        let c = median(cpu.clone());
        println!(
            "  {name:<34} {c:>8.3} {:>9.3} {:>7.2}x {:>15.3}",
            median(wall.clone()),
            c / floor,
            c - floor
        );
    }
    let above = |i: usize| median(results[i].1.clone()) - floor;
    println!(
        "  one ladder session above the floor: {:.2}x three hlsclipsinks', {:.2}x three hlssink2s'",
        above(1) / above(2),
        above(1) / above(3)
    );
}
