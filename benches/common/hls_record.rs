// SPDX-License-Identifier: MPL-2.0
//! The ingest comparison of `benches/hls_record.rs`, shared with
//! `benches/scale.rs`: the same pre-encoded 60 s 1080p stream recorded as
//! fast as possible by hlsclipsink, hlssink2 and `ffmpeg -c copy -f hls
//! -hls_segment_type fmp4`, each a process of its own whose user + system
//! CPU time GNU time reads, against the floor (demux and parse into
//! fakesink) and the write floor (the same into filesinks: the bytes on
//! disk); and the whole machine's CPU time over each run and a `sync`,
//! which counts the kernel's writeback whoever asked for it.

use std::path::Path;
use std::process::Command;

/// The cases, in the order they run and print.
pub const CASES: [&str; 5] = [
    "floor (demux+parse ! fakesink)",
    "hlsclipsink",
    "hlssink2",
    "ffmpeg -f hls fmp4",
    "write floor (… ! filesink)",
];

/// Each case's CPU seconds and wall seconds, one value per run.
pub struct Runs {
    pub name: &'static str,
    pub cpu: Vec<f64>,
    pub wall: Vec<f64>,
    /// The whole machine's CPU seconds over the run and the `sync` that
    /// follows it: the process's own time and the kernel's writeback of
    /// what it wrote (which a process that never syncs leaves to the
    /// kernel's flusher threads, outside its own CPU time).
    pub machine: Vec<f64>,
}

/// Writes every dirty page back to disk (the `sync` command).
fn sync() {
    let _ = Command::new("sync").status();
}

/// CPU seconds the whole machine has been busy since boot (`/proc/stat`:
/// user, nice, system, irq, softirq and steal, at 100 ticks a second).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum::<f64>()
        / 100.0
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every case `runs` times (interleaved), in `out` (a scratch
/// directory); checks that hlsclipsink's recording holds every frame.
pub fn measure(runs: usize, out: &Path) -> Vec<Runs> {
    let input = super::input();
    // The plugin built with this benchmark, alone in a directory.
    let plugin_dir = out.join("plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().join("libgstliveclip.so");
    std::fs::copy(&built, plugin_dir.join("libgstliveclip.so")).unwrap();
    let demux = format!(
        // Unbounded queues: hlssink2 (splitmuxsink) stalls at EOS with the
        // default ones on this interleaved file input.
        "filesrc location={} ! qtdemux name=d \
         d.video_0 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! h264parse ! {{V}} \
         d.audio_0 ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! aacparse ! {{A}}",
        input.display()
    );
    let gst = |tail: &str, v: &str, a: &str| {
        let desc = format!("{} {tail}", demux.replace("{V}", v).replace("{A}", a));
        let mut c = Command::new("gst-launch-1.0");
        c.env("GST_PLUGIN_PATH", &plugin_dir)
            .arg("-q")
            .args(desc.split_whitespace());
        c
    };
    let dir = |name: &str| {
        let d = out.join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    };

    let mut results: Vec<Runs> = CASES
        .iter()
        .map(|&name| Runs {
            name,
            cpu: Vec::new(),
            wall: Vec::new(),
            machine: Vec::new(),
        })
        .collect();
    for _ in 0..runs {
        for (i, result) in results.iter_mut().enumerate() {
            let mut cmd = match i {
                0 => gst("", "fakesink", "fakesink"),
                // The floor plus writing the same bytes to two files: what
                // any recorder pays to put the stream on disk.
                4 => {
                    let d = dir("filesink");
                    gst(
                        "",
                        &format!("filesink location={}/video.h264", d.display()),
                        &format!("filesink location={}/audio.aac", d.display()),
                    )
                }
                1 => {
                    let d = dir("hlsclipsink");
                    gst(
                        &format!(
                            "hlsclipsink name=h location={} stream-id=bench target-duration=6 send-keyframe-requests=false",
                            d.display()
                        ),
                        "h.video",
                        "h.audio",
                    )
                }
                2 => {
                    let d = dir("hlssink2");
                    gst(
                        &format!(
                            "hlssink2 name=h location={}/segment%05d.ts playlist-location={}/playlist.m3u8 target-duration=6 max-files=0 playlist-length=0 send-keyframe-requests=false",
                            d.display(),
                            d.display()
                        ),
                        "h.video",
                        "h.audio",
                    )
                }
                _ => {
                    let d = dir("ffmpeg");
                    let mut c = Command::new("ffmpeg");
                    c.args(["-nostdin", "-v", "error", "-y", "-i"])
                        .arg(&input)
                        .args([
                            "-map",
                            "0",
                            "-c",
                            "copy",
                            "-f",
                            "hls",
                            "-hls_segment_type",
                            "fmp4",
                        ])
                        .args(["-hls_time", "6", "-hls_playlist_type", "vod"])
                        .arg(d.join("playlist.m3u8"));
                    c
                }
            };
            // hlssink2 (GStreamer 1.22) sometimes stalls at EOS after writing
            // everything; its playlist's ENDLIST says the work is done.
            let h2 = out.join("hlssink2/playlist.m3u8");
            // Nothing of the previous run (or of the removed directory)
            // left to write back.
            sync();
            let before = machine_busy();
            let (cpu, wall) = super::cpu_time_until(&mut cmd, || {
                i == 2 && std::fs::read_to_string(&h2).is_ok_and(|p| p.contains("#EXT-X-ENDLIST"))
            });
            sync();
            result.machine.push(machine_busy() - before);
            result.cpu.push(cpu);
            result.wall.push(wall);
        }
    }
    // The recording plays: every frame is in the replay playlist.
    let session = std::fs::read_dir(out.join("hlsclipsink/bench"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(session.join("replay.m3u8"))
        .output()
        .unwrap();
    let counted = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(counted.split_whitespace().next(), Some("1800"), "{counted}");
    results
}

/// Prints the table of `measure`'s results and returns hlsclipsink's CPU
/// over the floor's.
pub fn print(results: &[Runs], runs: usize) -> f64 {
    let floor = median(results[0].cpu.clone());
    let ours = median(results[1].cpu.clone());
    println!("hls_record: 60 s of 1080p H.264 (6 Mb/s) + AAC, median of {runs} runs");
    let machine_floor = median(results[0].machine.clone());
    println!(
        "  {:<32} {:>8} {:>14} {:>8} {:>9} {:>10} {:>9}",
        "", "CPU s", "CPU s/media h", "wall s", "vs floor", "machine s", "vs floor"
    );
    for r in results {
        let c = median(r.cpu.clone());
        let m = median(r.machine.clone());
        println!(
            "  {:<32} {c:>8.3} {:>14.1} {:>8.3} {:>8.2}x {m:>10.2} {:>8.2}x",
            r.name,
            c * 60.0,
            median(r.wall.clone()),
            c / floor,
            m / machine_floor
        );
    }
    println!(
        "  (machine s: every CPU's busy time over the run and a sync after it, writeback included; 10 ms ticks)"
    );
    let hlssink2 = median(results[2].cpu.clone());
    let ffmpeg = median(results[3].cpu.clone());
    println!(
        "  hlsclipsink CPU: {:.2}x the floor's, {:.2}x hlssink2's, {:.2}x ffmpeg's (above the floor: {:.3} s vs hlssink2 {:.3} s, ffmpeg total {:.3} s)",
        ours / floor,
        ours / hlssink2,
        ours / ffmpeg,
        ours - floor,
        hlssink2 - floor,
        ffmpeg
    );
    let machine = |i: usize| median(results[i].machine.clone());
    println!(
        "  machine, writeback included: hlsclipsink {:.2}x the write floor's, {:.2}x ffmpeg's, {:.2}x hlssink2's",
        machine(1) / machine(4),
        machine(1) / machine(3),
        machine(1) / machine(2)
    );
    ours / floor
}
