// SPDX-License-Identifier: MPL-2.0
//! Fuzzing of everything that parses outside input, as property tests with
//! a large generated corpus (no nightly toolchain needed): time
//! specifications, request queries, NAL units, SCTE-35 sections, stored
//! segments and init segments read back, and a session's recovery from
//! damaged files (a real recording, mutated). The property is the same everywhere: no
//! panic, and an answer (a value or an error) for every input.
//!
//! Each target runs `FUZZ_ITERATIONS` inputs (default: a few thousand, a
//! few seconds in all), or for `FUZZ_SECONDS` when set (see
//! `scripts/fuzz.sh`). A failing input is printed (hex) so it can become a
//! regression test; the seed is printed too (`FUZZ_SEED` replays a run).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// xorshift64*: fast, and a run is replayed from its seed.
struct Rng(u64);

impl Rng {
    fn new(target: &str) -> Rng {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("fuzz {target}: FUZZ_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A string of up to `max` characters drawn from `alphabet` (and now
    /// and then any character).
    fn text(&mut self, alphabet: &[char], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                if self.below(50) == 0 {
                    char::from_u32(self.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}')
                } else {
                    alphabet[self.below(alphabet.len())]
                }
            })
            .collect()
    }

    /// `data` with a few random mutations: bit flips, a cut, an insertion,
    /// a random 32-bit field (a box size), a repeated range.
    fn mutate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut d = data.to_vec();
        for _ in 0..1 + self.below(4) {
            if d.is_empty() {
                d = self.bytes(16);
            }
            match self.below(5) {
                0 => {
                    for _ in 0..1 + self.below(8) {
                        let i = self.below(d.len());
                        d[i] ^= 1 << self.below(8);
                    }
                }
                1 => d.truncate(self.below(d.len())),
                2 => {
                    let at = self.below(d.len());
                    let n = 1 + self.below(64);
                    let extra = self.bytes(n);
                    d.splice(at..at, extra);
                }
                3 if d.len() >= 4 => {
                    let at = self.below(d.len() - 3);
                    let v = match self.below(4) {
                        0 => 0u32,
                        1 => u32::MAX,
                        2 => self.below(64) as u32,
                        _ => self.next() as u32,
                    };
                    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
                _ => {
                    let a = self.below(d.len());
                    let b = (a + self.below(256)).min(d.len());
                    let copy = d[a..b].to_vec();
                    let at = self.below(d.len());
                    d.splice(at..at, copy);
                }
            }
        }
        d
    }
}

/// Runs `one` on generated inputs for the configured count or time; a
/// panic fails the test with the input that caused it.
fn fuzz<I: std::fmt::Debug>(
    target: &str,
    default_iterations: u64,
    mut make: impl FnMut(&mut Rng) -> I,
    mut one: impl FnMut(&I),
) {
    let mut rng = Rng::new(target);
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let iterations = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_iterations);
    let started = Instant::now();
    let mut n = 0u64;
    loop {
        let done = match seconds {
            Some(s) => started.elapsed() >= Duration::from_secs(s),
            None => n >= iterations,
        };
        if done {
            break;
        }
        let input = make(&mut rng);
        if catch_unwind(AssertUnwindSafe(|| one(&input))).is_err() {
            panic!("fuzz {target}: input #{n} panicked: {input:?}");
        }
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {target}: {n} inputs in {secs:.1} s ({:.0}/s), no panic",
        n as f64 / secs.max(1e-9)
    );
}

/// Bytes shown as hex in failure messages.
struct Hex(Vec<u8>);

impl std::fmt::Debug for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[test]
fn time_specifications() {
    use gstliveclip::core::timespec::{parse_duration, parse_time_point, parse_utc};
    let alphabet: Vec<char> = "0123456789.:hmsHMSTZtz+-eE nNaIiFf,/_xµ".chars().collect();
    fuzz(
        "timespec",
        50_000,
        |r| r.text(&alphabet, 40),
        |s| {
            let d = parse_duration(s);
            let _ = parse_time_point(s);
            let _ = parse_utc(s);
            // A duration that parses prints and parses back the same.
            if let Ok(d) = d {
                assert!(d.as_secs() < u64::MAX / 2, "{s:?} -> {d:?}");
            }
        },
    );
}

#[test]
fn request_queries() {
    use gstliveclip::core::query;
    use gstliveclip::hls::clip::ClipRequest;
    let alphabet: Vec<char> = "=&%+ ?timestarduonclcyfeky0123456789.:sZT-ABCDEF"
        .chars()
        .collect();
    fuzz(
        "query",
        50_000,
        |r| r.text(&alphabet, 80),
        |q| {
            if let Ok(pairs) = query::pairs(q) {
                // The rules hold for whatever was accepted.
                for (i, (name, value)) in pairs.iter().enumerate() {
                    assert!(!pairs[..i].iter().any(|(n, _)| n == name), "{q:?}");
                    assert_eq!(value.trim(), value, "{q:?}");
                    assert!(value.len() <= query::MAX_VALUE, "{q:?}");
                }
            }
            let _ = ClipRequest::parse_query(q);
        },
    );
}

#[test]
fn nal_units() {
    use gstliveclip::core::nal::{self, Codec, Framing};
    // Real-looking access units: parameter sets and slices with length
    // prefixes and start codes, then mutated.
    let units: [&[u8]; 5] = [
        &[0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50],
        &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0],
        &[0x65, 0x88, 0x84, 0x00, 0x33, 0xff, 0xfe, 0xf6, 0xf0],
        &[0x41, 0x9a, 0x21, 0x6c, 0x42, 0xff],
        &[0x06, 0x05, 0x10, 0xb9, 0xed, 0xb9, 0x30],
    ];
    fuzz(
        "nal",
        30_000,
        |r| {
            let mut au = Vec::new();
            for _ in 0..1 + r.below(5) {
                let u = units[r.below(units.len())];
                if r.below(2) == 0 {
                    au.extend_from_slice(&(u.len() as u32).to_be_bytes());
                } else {
                    au.extend_from_slice(&[0, 0, 0, 1]);
                }
                au.extend_from_slice(u);
            }
            Hex(r.mutate(&au))
        },
        |Hex(au)| {
            for codec in [Codec::H264, Codec::H265] {
                for framing in [
                    Framing::Length(4),
                    Framing::Length(2),
                    Framing::Length(1),
                    Framing::ByteStream,
                ] {
                    let _ = nal::classify(au, codec, framing);
                    let _ = nal::check(au, codec, framing);
                    let _ = nal::head_units(au, codec, framing);
                }
            }
            let sps: &[u8] = units[0];
            let _ = nal::h264_with_frame_num_zero(au, Framing::Length(4), &[sps]);
            let _ = nal::h264_with_frame_num_zero(au, Framing::ByteStream, &[sps]);
        },
    );
}

#[test]
fn scte35_sections() {
    use gstliveclip::core::scte35::{PTS_MODULO, SpliceInfo, crc32};
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    // SCTE 35's sample messages (time_signal with one and two
    // segmentation descriptors, splice_insert) and sections as
    // mpegtsmux writes them (splice_insert OUT and IN, time_signal).
    let corpus: Vec<Vec<u8>> = [
        "FC3034000000000000FFFFF00506FE72BD0050001E021C435545494800008E7FCF0001A599B00808000000002CA0A18A3402009AC9D17E",
        "FC302F000000000000FFFFF014054800008F7FEFFE7369C02EFE0052CCF500000000000A0008435545490000013562DBA30A",
        "FC3048000000000000FFFFF00506FE7A4D88B60032021743554549480000187F9F0808000000002CCBC344110000021743554549480000197F9F0808000000002CA4DBA01000009972E343",
        "FC302500000000000000FFF01405000003E97FEFF213555740FE00057E40004D0102000052D60DE9",
        "FC302000000000000000FFF00F05000003E97F4FF2135AD580000000000000A879DA8A",
        "FC3042000000015F9000FFF00506F2135C3510002C022A43554549000007D27FFF000002BF200F1475726E3A6C697665636C69703A6669787475726534010201014871F1A8",
    ]
    .iter()
    .map(|s| hex(s))
    .collect();
    fuzz(
        "scte35",
        50_000,
        |r| {
            let pick = r.below(corpus.len());
            let mut d = r.mutate(&corpus[pick]);
            // Most inputs get a right section_length and CRC again, so
            // that parsing goes past the framing checks.
            if d.len() >= 7 && r.below(4) != 0 {
                d[0] = 0xFC;
                d.truncate(d.len().min(4096) - 4);
                let len = d.len() + 4 - 3;
                d[1] = (d[1] & 0xF0) | (len >> 8) as u8;
                d[2] = len as u8;
                let crc = crc32(&d);
                d.extend_from_slice(&crc.to_be_bytes());
            }
            Hex(d)
        },
        |Hex(d)| {
            if let Ok(info) = SpliceInfo::parse(d) {
                let len = (usize::from(d[1] & 0x0F) << 8 | usize::from(d[2])) + 3;
                assert_eq!(info.raw, d[..len]);
                assert_eq!(info.hex().len(), 2 + 2 * len);
                assert!(info.splice_pts().is_none_or(|p| p < PTS_MODULO));
                let _ = (
                    info.is_out(),
                    info.event_id(),
                    info.duration(),
                    info.class(),
                );
            }
        },
    );
}

/// A short real recording (H.264 with B-frames and AAC): its session
/// directory.
fn recording(dir: &Path) -> PathBuf {
    init();
    let p = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=1 \
         videotestsrc num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
           x264enc bframes=2 key-int-max=15 speed-preset=ultrafast ! h264parse ! queue ! h.video \
         audiotestsrc num-buffers=141 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
           voaacenc ! aacparse ! queue ! h.audio",
        dir.display()
    ));
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the recording ends");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
    session_dirs(&dir.join("cam"))[0].clone()
}

#[test]
fn stored_segments_and_init_segments() {
    use gstliveclip::mp4::scan;
    let dir = tempfile::tempdir().unwrap();
    let session = recording(dir.path());
    let segment = std::fs::read(session.join("segment-00000.m4s")).unwrap();
    let init = std::fs::read(session.join("init.mp4")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("segment.m4s");
    fuzz(
        "mp4-scan",
        4_000,
        |r| {
            let which = r.below(2);
            Hex(if which == 0 {
                r.mutate(&segment)
            } else {
                r.mutate(&init)
            })
        },
        |Hex(data)| {
            std::fs::write(&path, data).unwrap();
            if let Ok(s) = scan::scan_segment(&path) {
                assert!(s.valid_len <= s.file_len);
            }
            let _ = scan::read_moov(data);
        },
    );
}

#[test]
fn session_recovery_from_damaged_files() {
    use gstliveclip::hls::recorder::{Recorder, RecorderConfig};
    let dir = tempfile::tempdir().unwrap();
    let session = recording(dir.path());
    let media_id = session.file_name().unwrap().to_owned();
    let names: Vec<String> = std::fs::read_dir(&session)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let sessions_json = std::fs::read(dir.path().join("cam/sessions.json")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut round = 0u64;
    fuzz(
        "recovery",
        600,
        |r| {
            // One damaged file (or sessions.json), maybe one deleted.
            let target = r.below(names.len() + 1);
            let data = if target == names.len() {
                sessions_json.clone()
            } else {
                std::fs::read(session.join(&names[target])).unwrap()
            };
            let delete = (r.below(4) == 0).then(|| r.below(names.len()));
            (target, Hex(r.mutate(&data)), delete)
        },
        |(target, Hex(data), delete)| {
            round += 1;
            let location = work.path().join(round.to_string());
            let stream = location.join("cam");
            let copy = stream.join(&media_id);
            std::fs::create_dir_all(&copy).unwrap();
            for n in &names {
                std::fs::copy(session.join(n), copy.join(n)).unwrap();
            }
            std::fs::write(stream.join("sessions.json"), &sessions_json).unwrap();
            if *target == names.len() {
                std::fs::write(stream.join("sessions.json"), data).unwrap();
            } else {
                std::fs::write(copy.join(&names[*target]), data).unwrap();
            }
            if let Some(d) = delete {
                let _ = std::fs::remove_file(copy.join(&names[*d]));
            }
            let cfg = RecorderConfig {
                playlist_length: 5,
                part_duration: Duration::ZERO,
                target_duration: 1,
                enable_pdt: true,
                reconnect_window: Duration::from_secs(3600),
                max_age: Duration::ZERO,
                max_bytes: 0,
            };
            if let Ok((mut rec, _)) = Recorder::start(
                &location,
                "cam",
                cfg,
                gstliveclip::hls::ladder::RenditionSpec::single(2),
                chrono::Utc::now(),
            ) {
                let _ = rec.finish_session(chrono::Utc::now());
                // What recovery kept parses as a playlist.
                let replay = rec.session_dir().join("replay.m3u8");
                if let Ok(text) = std::fs::read(&replay) {
                    assert!(
                        m3u8_rs::parse_media_playlist_res(&text).is_ok(),
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
            let _ = std::fs::remove_dir_all(&location);
        },
    );
}
