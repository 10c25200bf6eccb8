// SPDX-License-Identifier: MPL-2.0
//! SCTE-35 cues from MPEG-TS: a TS made by mpegtsmux with a splice_insert
//! OUT/IN pair and a time_signal (tests/common/scte35.rs) is demuxed by
//! `tsdemux send-scte35-events=true`, and the events it pushes are read by
//! `media::scte35::from_event`: parsed sections, splice points in running
//! time. ffprobe checks the TS independently.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::scte35 as fixture;
use common::*;
use gst::prelude::*;
use gstliveclip::core::scte35::{SpliceCommand, SpliceInfo};
use gstliveclip::media::scte35::{self, Scte35Event, TimeSource};

/// What went through one tsdemux source pad, in order.
#[derive(Debug, Clone)]
enum Item {
    /// A buffer: running time of its PTS (ns), keyframe.
    Buffer(u64, bool),
    /// A SCTE-35 event, and its running time from `mpeg-pts-offset`
    /// alone (ns), to compare with the map's.
    Cue(Box<Scte35Event>, Option<u64>),
}

struct Demuxed {
    /// Pad name, caps name, items.
    pads: Vec<(String, String, Vec<Item>)>,
    errors: Vec<String>,
}

fn demux(path: &std::path::Path) -> Demuxed {
    let pipeline = launch(&format!(
        "filesrc location={} ! tsdemux name=d send-scte35-events=true",
        path.display()
    ));
    let out = Arc::new(Mutex::new(Demuxed {
        pads: Vec::new(),
        errors: Vec::new(),
    }));
    let demux = pipeline.by_name("d").unwrap();
    let weak = pipeline.downgrade();
    let o = out.clone();
    demux.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        let index = {
            let mut o = o.lock().unwrap();
            o.pads
                .push((pad.name().to_string(), String::new(), Vec::new()));
            o.pads.len() - 1
        };
        let o = o.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |pad, info| {
                let mut o = o.lock().unwrap();
                if let Some(b) = info.buffer() {
                    let seg = pad.sticky_event::<gst::event::Segment>(0).unwrap();
                    let seg = seg.segment().downcast_ref::<gst::ClockTime>().unwrap();
                    let rt = b
                        .pts()
                        .and_then(|t| seg.to_running_time(t))
                        .map_or(u64::MAX, |t| t.nseconds());
                    let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
                    o.pads[index].2.push(Item::Buffer(rt, key));
                } else if let Some(e) = info.event() {
                    if let gst::EventView::Caps(c) = e.view() {
                        o.pads[index].1 = c.caps().structure(0).unwrap().name().to_string();
                    }
                    match scte35::from_event(e) {
                        None => {}
                        Some(Ok(cue)) => {
                            let by_offset = offset_running_time(e, &cue.info);
                            o.pads[index].2.push(Item::Cue(Box::new(cue), by_offset));
                        }
                        Some(Err(err)) => o.errors.push(err),
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
    });
    let run = run(&pipeline, Duration::from_secs(60));
    ok(&run);
    drop(pipeline);
    let mut o = out.lock().unwrap();
    Demuxed {
        pads: std::mem::take(&mut o.pads),
        errors: std::mem::take(&mut o.errors),
    }
}

/// The running time of the section's splice point from tsdemux's
/// `mpeg-pts-offset` alone (not from its running-time map).
fn offset_running_time(e: &gst::EventRef, info: &SpliceInfo) -> Option<u64> {
    let offset = e.structure()?.get::<u64>("mpeg-pts-offset").ok()?;
    let ticks = (info.splice_pts()? + offset) % (1 << 33);
    Some(ticks * 100_000 / 9)
}

fn near(actual: Option<gst::ClockTime>, expected: u64, tolerance: u64, what: &str) {
    let actual = actual
        .unwrap_or_else(|| panic!("{what}: no running time"))
        .nseconds();
    assert!(
        actual.abs_diff(expected) <= tolerance,
        "{what}: running time {actual} ns, expected {expected} ns (± {tolerance})"
    );
}

#[test]
fn tsdemux_cues_parse_and_land_on_their_frames() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("cues.ts");
    let cues = fixture::write_ts(&ts);

    let d = demux(&ts);
    assert!(
        d.errors.is_empty(),
        "unreadable SCTE-35 events: {:?}",
        d.errors
    );
    let video = d
        .pads
        .iter()
        .find(|p| p.1 == "video/x-h264")
        .expect("a video pad");
    let audio = d
        .pads
        .iter()
        .find(|p| p.1 == "audio/mpeg")
        .expect("an audio pad");
    assert_eq!(
        d.pads.len(),
        2,
        "video and audio pads only: {:?}",
        d.pads.iter().map(|p| &p.0).collect::<Vec<_>>()
    );

    // The running time of video frame 0 (the fixture's splice times count
    // from it): the smallest PTS running time of the video.
    let frame0 = video
        .2
        .iter()
        .filter_map(|i| match i {
            Item::Buffer(rt, _) => Some(*rt),
            _ => None,
        })
        .min()
        .unwrap();
    let frame = 1_000_000_000 / fixture::FPS;

    // The same cues on both pads, with the same seqnums; heartbeats
    // (splice_null) left aside.
    let cues_of = |items: &[Item]| -> Vec<(Box<Scte35Event>, Option<u64>)> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Cue(c, o) if c.info.class() != "splice_null" => Some((c.clone(), *o)),
                _ => None,
            })
            .collect()
    };
    let on_video = cues_of(&video.2);
    let on_audio = cues_of(&audio.2);
    assert_eq!(on_video.len(), 3, "{on_video:#?}");
    assert_eq!(
        on_video.iter().map(|c| c.0.seqnum).collect::<Vec<_>>(),
        on_audio.iter().map(|c| c.0.seqnum).collect::<Vec<_>>()
    );

    let ns = |d: Duration| d.as_nanos() as u64;
    let (out, out_by_offset) = &on_video[0];
    let (inn, in_by_offset) = &on_video[1];
    let (signal, signal_by_offset) = &on_video[2];

    // OUT: splice_insert 1001, out of network, 4 s break with auto return.
    assert_eq!(out.info.class(), "splice_insert");
    assert_eq!(out.info.event_id(), Some(cues.event_id));
    assert_eq!(out.info.is_out(), Some(true));
    assert_eq!(out.info.duration(), Some(cues.break_duration));
    let SpliceCommand::Insert(i) = &out.info.command else {
        panic!("{:?}", out.info.command)
    };
    assert!(i.program_splice && !i.immediate && !i.cancel);
    assert!(i.break_duration.unwrap().auto_return);
    assert_eq!(i.unique_program_id, cues.unique_program_id);
    assert_eq!((i.avail_num, i.avails_expected), cues.avail);
    assert!(out.info.hex().starts_with("0xFC"));
    assert_eq!(out.time_source, TimeSource::Demuxer);
    near(out.running_time, frame0 + ns(cues.out_at), frame, "OUT");

    // IN: the same event, back to the network.
    assert_eq!(inn.info.class(), "splice_insert");
    assert_eq!(inn.info.event_id(), Some(cues.event_id));
    assert_eq!(inn.info.is_out(), Some(false));
    assert_eq!(inn.info.duration(), None);
    assert_eq!(inn.time_source, TimeSource::Demuxer);
    near(inn.running_time, frame0 + ns(cues.in_at), frame, "IN");

    // time_signal: the point is right only with pts_adjustment applied.
    assert_eq!(signal.info.class(), "time_signal");
    assert_eq!(signal.info.pts_adjustment, cues.signal_pts_adjustment);
    assert_eq!(signal.time_source, TimeSource::Demuxer);
    near(
        signal.running_time,
        frame0 + ns(cues.signal_at),
        frame,
        "time_signal",
    );
    assert_eq!(signal.info.descriptors.len(), 1);
    let seg = &signal.info.descriptors[0];
    let want = &cues.segmentation;
    assert_eq!(seg.event_id, want.event_id);
    assert!(!seg.cancel && seg.program_segmentation);
    assert_eq!(seg.type_id, want.type_id);
    assert_eq!(seg.type_name(), "Provider Placement Opportunity Start");
    assert_eq!(seg.duration, Some(want.duration));
    assert_eq!((seg.upid_type, &seg.upid), (want.upid_type, &want.upid));
    assert_eq!(
        (seg.segment_num, seg.segments_expected),
        (want.segment_num, want.segments_expected)
    );
    assert_eq!(seg.sub_segment, Some(want.sub_segment));
    assert_eq!(signal.info.is_out(), Some(true));
    assert_eq!(signal.info.event_id(), Some(want.event_id));
    assert_eq!(signal.info.duration(), Some(Duration::from_secs(2)));

    for (cue, by_offset) in [
        (out, out_by_offset),
        (inn, in_by_offset),
        (signal, signal_by_offset),
    ] {
        let rt = cue.running_time.unwrap().nseconds();
        eprintln!(
            "{} {:?}: running time {rt} ns ({} ns after frame 0 at {frame0}), by pts offset {by_offset:?}, pts {:?}, {}",
            cue.info.class(),
            cue.info.event_id(),
            rt - frame0,
            cue.info.splice_pts(),
            cue.info.hex()
        );
        // tsdemux's map and its PTS offset agree (to a 90 kHz tick).
        let by_offset = by_offset.expect("mpeg-pts-offset");
        assert!(
            rt.abs_diff(by_offset) <= 12_000,
            "map {rt} vs offset {by_offset}"
        );
        // Each cue comes ahead of its splice point (the fixture's 3 s
        // pre-roll, less what the demuxer holds), and a keyframe is there.
        let pos = video
            .2
            .iter()
            .position(|i| matches!(i, Item::Cue(c, _) if c.seqnum == cue.seqnum))
            .unwrap();
        let before: Vec<u64> = video.2[..pos]
            .iter()
            .filter_map(|i| match i {
                Item::Buffer(t, _) => Some(*t),
                _ => None,
            })
            .collect();
        let latest = before.iter().copied().max().unwrap_or(0);
        assert!(
            latest + 1_000_000_000 < rt,
            "{}: seen when video was at {latest} ns, splice at {rt} ns",
            cue.info.class()
        );
        let key_at_point = video
            .2
            .iter()
            .any(|i| matches!(i, Item::Buffer(t, true) if t.abs_diff(rt) < frame / 2));
        assert!(key_at_point, "{}: a keyframe at {rt} ns", cue.info.class());
    }
}

#[test]
fn ffprobe_sees_the_scte35_stream_and_its_sections() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("cues.ts");
    let cues = fixture::write_ts(&ts);

    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name,id",
            "-of",
            "csv=p=0",
        ])
        .arg(&ts)
        .output()
        .expect("ffprobe runs");
    let streams = String::from_utf8_lossy(&out.stdout).into_owned();
    // Listed under the program and again on their own: once each.
    let mut data: Vec<&str> = streams.lines().filter(|l| l.contains("data")).collect();
    data.dedup();
    assert_eq!(data.len(), 1, "{streams}");
    assert!(data[0].contains("scte_35"), "{streams}");
    assert!(data[0].contains(&format!("0x{:x}", cues.pid)), "{streams}");
    assert!(
        streams.contains("h264") && streams.contains("aac"),
        "{streams}"
    );

    // The section packets, read by ffmpeg's own demuxer: their payloads
    // are splice_info_sections that parse.
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "d",
            "-show_packets",
            "-show_data",
            "-of",
            "json",
        ])
        .arg(&ts)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packets = json["packets"].as_array().cloned().unwrap_or_default();
    let sections: Vec<SpliceInfo> = packets
        .iter()
        .map(|p| {
            let bytes = hexdump_bytes(p["data"].as_str().unwrap_or(""));
            SpliceInfo::parse(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:02X?}"))
        })
        .collect();
    eprintln!(
        "{} SCTE-35 packets: {:?}",
        sections.len(),
        sections.iter().map(|s| s.class()).collect::<Vec<_>>()
    );
    let classes: Vec<&str> = sections
        .iter()
        .map(|s| s.class())
        .filter(|c| *c != "splice_null")
        .collect();
    assert_eq!(
        classes,
        ["splice_insert", "splice_insert", "time_signal"],
        "{sections:#?}"
    );
}

/// The bytes of ffprobe's `-show_data` hexdump ("00000000: fc30 2500 ...  text").
fn hexdump_bytes(dump: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in dump.lines() {
        let Some((_, rest)) = line.split_once(": ") else {
            continue;
        };
        // Eight groups of up to four hex digits, then two spaces and text.
        let hex = rest.split("  ").next().unwrap_or("");
        for group in hex.split_whitespace() {
            for i in (0..group.len()).step_by(2) {
                if let Ok(b) = u8::from_str_radix(&group[i..(i + 2).min(group.len())], 16) {
                    out.push(b);
                }
            }
        }
    }
    out
}
