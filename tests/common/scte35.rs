// SPDX-License-Identifier: MPL-2.0
//! An MPEG-TS with SCTE-35 cues, made by GStreamer itself: H.264 and AAC
//! through `mpegtsmux scte-35-pid=...`, the cues built and packetized by
//! libgstmpegts (`gst_mpegts_scte_*`, `gst_mpegts_section_from_scte_sit`)
//! and handed to the muxer with `gst_mpegts_section_send_event` while the
//! stream is made, a few seconds before each splice point.
//!
//! libgstmpegts has no Rust bindings: its functions are loaded at run time
//! (`dlopen` of its soname) and its two public structures that need
//! filling are mirrored below.

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::launch;

/// The PID of the SCTE-35 stream.
pub const PID: u16 = 500;
pub const FPS: u64 = 30;
/// Video frames: 12 s.
pub const FRAMES: u64 = 360;

/// What the fixture put in the TS. Times are running times of the muxer's
/// input, where video frame `n` is at `n / 30` s.
#[derive(Debug, Clone)]
pub struct Cues {
    pub pid: u16,
    /// `splice_insert` OUT and IN: their event id.
    pub event_id: u32,
    pub out_at: Duration,
    pub in_at: Duration,
    /// The OUT's break duration (auto-return set).
    pub break_duration: Duration,
    pub unique_program_id: u16,
    /// `avail_num`, `avails_expected` of the OUT.
    pub avail: (u8, u8),
    /// The `time_signal`'s splice point.
    pub signal_at: Duration,
    /// Its `pts_adjustment` (90 kHz ticks): the time field is this much
    /// earlier, so the point is right only where the adjustment is applied.
    pub signal_pts_adjustment: u64,
    pub segmentation: Segmentation,
}

/// The time_signal's segmentation descriptor.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub event_id: u32,
    pub type_id: u8,
    /// 90 kHz ticks.
    pub duration: u64,
    pub upid_type: u8,
    pub upid: Vec<u8>,
    pub segment_num: u8,
    pub segments_expected: u8,
    pub sub_segment: (u8, u8),
}

impl Segmentation {
    /// The descriptor's bytes after tag and length: identifier "CUEI",
    /// program segmentation, delivery not restricted.
    fn payload(&self) -> Vec<u8> {
        let mut v = b"CUEI".to_vec();
        v.extend_from_slice(&self.event_id.to_be_bytes());
        v.push(0x7F); // not cancelled
        v.push(0x80 | 0x40 | 0x20 | 0x1F);
        v.push((self.duration >> 32) as u8);
        v.extend_from_slice(&(self.duration as u32).to_be_bytes());
        v.push(self.upid_type);
        v.push(self.upid.len() as u8);
        v.extend_from_slice(&self.upid);
        v.extend_from_slice(&[
            self.type_id,
            self.segment_num,
            self.segments_expected,
            self.sub_segment.0,
            self.sub_segment.1,
        ]);
        v
    }
}

pub fn cues() -> Cues {
    Cues {
        pid: PID,
        event_id: 1001,
        out_at: Duration::from_secs(4),
        in_at: Duration::from_secs(8),
        break_duration: Duration::from_secs(4),
        unique_program_id: 77,
        avail: (1, 2),
        signal_at: Duration::from_secs(10),
        signal_pts_adjustment: 90_000,
        segmentation: Segmentation {
            event_id: 2002,
            // Provider Placement Opportunity Start
            type_id: 0x34,
            duration: 2 * 90_000,
            upid_type: 0x0F, // URI
            upid: b"urn:liveclip:fixture".to_vec(),
            segment_num: 1,
            segments_expected: 2,
            sub_segment: (1, 1),
        },
    }
}

/// Writes ~12 s of 320x240 H.264 (30 fps, `key-int-max=30`) and AAC with
/// the cues of [`cues`] to `path`: a `splice_insert` OUT at 4 s (break
/// 4 s), its IN at 8 s, a `time_signal` with a segmentation descriptor at
/// 10 s. Each is handed to the muxer 3 s before its splice point.
pub fn write_ts(path: &Path) -> Cues {
    let cues = cues();
    let lib = Mpegts::load();
    let pipeline = launch(&format!(
        "videotestsrc num-buffers={FRAMES} pattern=ball \
           ! video/x-raw,width=320,height=240,framerate={FPS}/1 \
           ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse name=vparse ! queue ! mux. \
         audiotestsrc num-buffers={} samplesperbuffer=1024 \
           ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! queue ! mux. \
         mpegtsmux name=mux scte-35-pid={PID} ! filesink location={}",
        FRAMES * 48_000 / FPS / 1024 + 1,
        path.display()
    ));
    let mux = pipeline.by_name("mux").unwrap();
    let preroll = Duration::from_secs(3);
    let plan: Vec<(Duration, Cue)> = vec![
        (cues.out_at - preroll, Cue::Out),
        (cues.in_at - preroll, Cue::In),
        (cues.signal_at - preroll, Cue::Signal),
    ];
    let next = Arc::new(Mutex::new(0usize));
    let c = cues.clone();
    pipeline
        .by_name("vparse")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(rt) = info.buffer().and_then(|b| running_time(pad, b.pts())) else {
                return gst::PadProbeReturn::Ok;
            };
            let mut i = next.lock().unwrap();
            while let Some((at, cue)) = plan.get(*i)
                && rt >= *at
            {
                lib.send(&mux, &c, *cue);
                *i += 1;
            }
            gst::PadProbeReturn::Ok
        });
    let run = super::run(&pipeline, Duration::from_secs(60));
    super::ok(&run);
    cues
}

fn running_time(pad: &gst::Pad, pts: Option<gst::ClockTime>) -> Option<Duration> {
    let seg = pad.sticky_event::<gst::event::Segment>(0)?;
    let seg = seg.segment().downcast_ref::<gst::ClockTime>()?.clone();
    let rt = seg.to_running_time(pts?)?;
    Some(Duration::from_nanos(rt.nseconds()))
}

#[derive(Debug, Clone, Copy)]
enum Cue {
    Out,
    In,
    Signal,
}

/// `GstMpegtsSCTESIT` (gst/mpegts/gst-scte-section.h, 1.20+).
#[repr(C)]
struct Sit {
    encrypted_packet: c_int,
    encryption_algorithm: u8,
    pts_adjustment: u64,
    cw_index: u8,
    tier: u16,
    splice_command_length: u16,
    splice_command_type: c_int,
    splice_time_specified: c_int,
    splice_time: u64,
    splices: *mut glib::ffi::GPtrArray,
    descriptors: *mut glib::ffi::GPtrArray,
    fully_parsed: c_int,
    is_running_time: c_int,
}

/// `GstMpegtsSCTESpliceEvent` (same header, 1.20+).
#[repr(C)]
struct SpliceEvent {
    insert_event: c_int,
    splice_event_id: u32,
    splice_event_cancel_indicator: c_int,
    out_of_network_indicator: c_int,
    program_splice_flag: c_int,
    duration_flag: c_int,
    splice_immediate_flag: c_int,
    program_splice_time_specified: c_int,
    program_splice_time: u64,
    utc_splice_time: u32,
    components: *mut glib::ffi::GPtrArray,
    break_duration_auto_return: c_int,
    break_duration: u64,
    unique_program_id: u16,
    avail_num: u8,
    avails_expected: u8,
}

/// The functions of libgstmpegts the fixture uses.
#[derive(Clone, Copy)]
struct Mpegts {
    splice_out_new: unsafe extern "C" fn(u32, u64, u64) -> *mut Sit,
    splice_in_new: unsafe extern "C" fn(u32, u64) -> *mut Sit,
    sit_new: unsafe extern "C" fn() -> *mut Sit,
    descriptor_from_custom: unsafe extern "C" fn(u8, *const u8, usize) -> *mut c_void,
    section_from_scte_sit: unsafe extern "C" fn(*mut Sit, u16) -> *mut gst::ffi::GstMiniObject,
    section_send_event: unsafe extern "C" fn(
        *mut gst::ffi::GstMiniObject,
        *mut gst::ffi::GstElement,
    ) -> glib::ffi::gboolean,
}

impl Mpegts {
    fn load() -> Mpegts {
        // SAFETY: each symbol is read as a function pointer of its C
        // signature as declared in the library's headers (the field's
        // type); the library is never unloaded.
        unsafe {
            let lib = libc::dlopen(c"libgstmpegts-1.0.so.0".as_ptr(), libc::RTLD_NOW);
            assert!(!lib.is_null(), "libgstmpegts-1.0.so.0 loads");
            /// # Safety
            /// `F` must be the function pointer type of symbol `name`.
            unsafe fn sym<F: Copy>(lib: *mut c_void, name: &std::ffi::CStr) -> F {
                assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
                // SAFETY: dlsym with a handle from dlopen and a C string.
                let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
                assert!(!p.is_null(), "{name:?} in libgstmpegts");
                // SAFETY: F is the symbol's function pointer type.
                unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
            }
            let initialize: unsafe extern "C" fn() = sym(lib, c"gst_mpegts_initialize");
            initialize();
            Mpegts {
                splice_out_new: sym(lib, c"gst_mpegts_scte_splice_out_new"),
                splice_in_new: sym(lib, c"gst_mpegts_scte_splice_in_new"),
                sit_new: sym(lib, c"gst_mpegts_scte_sit_new"),
                descriptor_from_custom: sym(lib, c"gst_mpegts_descriptor_from_custom"),
                section_from_scte_sit: sym(lib, c"gst_mpegts_section_from_scte_sit"),
                section_send_event: sym(lib, c"gst_mpegts_section_send_event"),
            }
        }
    }

    /// Builds `cue` (times in running time: the muxer translates them to
    /// its PTS) and sends it to `mux`.
    fn send(&self, mux: &gst::Element, cues: &Cues, cue: Cue) {
        let ns = |d: Duration| d.as_nanos() as u64;
        // SAFETY: the SITs come from the library's constructors and are
        // changed through the mirrors of their public structures;
        // gst_mpegts_section_from_scte_sit takes the SIT, the event takes
        // its own reference to the section, ours is dropped at the end.
        unsafe {
            let sit = match cue {
                Cue::Out => {
                    let sit = (self.splice_out_new)(
                        cues.event_id,
                        ns(cues.out_at),
                        ns(cues.break_duration),
                    );
                    let event = *(*(*sit).splices).pdata as *mut SpliceEvent;
                    (*event).break_duration_auto_return = 1;
                    (*event).unique_program_id = cues.unique_program_id;
                    (*event).avail_num = cues.avail.0;
                    (*event).avails_expected = cues.avail.1;
                    sit
                }
                Cue::In => (self.splice_in_new)(cues.event_id, ns(cues.in_at)),
                Cue::Signal => {
                    let sit = (self.sit_new)();
                    (*sit).splice_command_type = 0x06;
                    (*sit).pts_adjustment = cues.signal_pts_adjustment;
                    (*sit).splice_time_specified = 1;
                    // The adjustment comes on top of the time field.
                    (*sit).splice_time =
                        ns(cues.signal_at) - cues.signal_pts_adjustment * 100_000 / 9;
                    let payload = cues.segmentation.payload();
                    let d = (self.descriptor_from_custom)(0x02, payload.as_ptr(), payload.len());
                    glib::ffi::g_ptr_array_add((*sit).descriptors, d);
                    sit
                }
            };
            let section = (self.section_from_scte_sit)(sit, cues.pid);
            assert!(!section.is_null());
            let sent = (self.section_send_event)(section, mux.as_ptr());
            gst::ffi::gst_mini_object_unref(section);
            assert_ne!(sent, 0, "mpegtsmux takes the {cue:?} section");
        }
    }
}
