// SPDX-License-Identifier: MPL-2.0
//! SCTE-35 cues as they reach a sink downstream of `tsdemux`, turned into
//! a parsed section ([`crate::core::scte35::SpliceInfo`]) and a splice point
//! in running time.
//!
//! # What tsdemux sends (GStreamer 1.20 - 1.22)
//!
//! With `send-scte35-events=true`, for every splice_info_section on a PID
//! that the program's PMT lists (stream type 0x86), tsdemux's `handle_psi`
//! pushes one **custom downstream event** (`GST_EVENT_CUSTOM_DOWNSTREAM`:
//! serialized, not sticky) on **every source pad of the program** (video,
//! audio, ...; the SCTE-35 PID itself has no pad). The pads get the same
//! event, so a sink with several pads sees it once per pad, with the same
//! seqnum ([`Scte35Event::seqnum`] tells the copies apart). The event goes
//! out when the section is read from the TS (so it may overtake media data
//! that precedes it in the TS but is still buffered in the demuxer), usually
//! seconds before the splice point it announces (SCTE-35 asks for at least
//! 4 s of pre-roll).
//!
//! Its structure is named **`scte-sit`** (that of
//! `gst_event_new_mpegts_section`) with the fields:
//!
//! - `section` (`GstMpegtsSection`, a boxed mini object of libgstmpegts):
//!   a copy of the section **as it was in the stream**. Its bytes are the
//!   original ones: splice times and `pts_adjustment` are *not* rewritten
//!   into running time (the section may be encrypted, and a muxer
//!   downstream re-inserts the bytes, changing only `pts_adjustment`).
//! - `mpeg-pts-offset` (`guint64`): 90 kHz ticks that take a PTS of the
//!   stream to the running time of tsdemux's output, modulo 2^33:
//!   `(running_time_90k(last PES PTS) - last PES PTS) & (2^33 - 1)`, updated
//!   with every PES timestamp. 0 until the first PTS after the output
//!   segment exists.
//! - `running-time-map` (a `GstStructure` named `running-time-map`): the
//!   splice times already in running time (ns, `guint64`), computed by
//!   tsdemux with its own PCR/PTS tracking (wrap-arounds and clock skew
//!   included) and its output segment: `splice-time` for a `time_signal`
//!   with a time, `event-<splice_event_id>-splice-time` for a
//!   `splice_insert` in program mode with a time. For a
//!   section it could not fully parse (encrypted, unknown command) the map
//!   is empty. A value is `GST_CLOCK_TIME_NONE` when tsdemux could not
//!   place the time (no output segment yet; for `time_signal`, a PTS more
//!   than 15 s away from the last PCR of a live stream).
//!
//! Both time fields are computed from `splice_time + pts_adjustment`.
//!
//! Caveats of tsdemux 1.22 (read in its source, the last two reproduced
//! with hand-made streams):
//!
//! - The SCTE-35 PID is read as sections only when the PMT carries a
//!   *program-level* registration descriptor with `CUEI`; without it (some
//!   encoders put it at the elementary stream, some leave it out) no event
//!   comes at all.
//! - A section before tsdemux's first output segment gets `NONE` in the map
//!   (and GLib prints a CRITICAL from `gst_segment_to_running_time`) and
//!   `mpeg-pts-offset` 0.
//! - A section with a right CRC that libgstmpegts refuses
//!   (`protocol_version` other than 0, bytes between the descriptor loop
//!   and the CRC, a command longer than its length) crashes tsdemux: it
//!   uses the parse result without checking it. Nothing downstream can
//!   help. [`SpliceInfo::parse`] is no stricter than libgstmpegts about
//!   the layout of the commands it decodes (and it accepts stuffing after
//!   the descriptors), so what tsdemux lets through reads.
//!
//! # The splice point in running time ([`Scte35Event::running_time`])
//!
//! 1. The section's time, [`SpliceInfo::splice_pts`]: none (an immediate
//!    splice, a `time_signal` without time) means "now": `running_time` is
//!    `None`. So it is for sections that splice nothing (`splice_null`, a
//!    cancel, `splice_schedule`, whose times are UTC, and the others):
//!    look at [`SpliceInfo::class`] first.
//! 2. Otherwise tsdemux's `running-time-map` entry for it, when present and
//!    valid ([`TimeSource::Demuxer`]).
//! 3. Otherwise (component splices, times tsdemux refused to place)
//!    `(splice_pts + mpeg-pts-offset) mod 2^33` ticks
//!    ([`TimeSource::PtsOffset`]); right as long as the running time is
//!    below 2^33 ticks (26.5 h). An offset of 0 is tsdemux's "not known
//!    yet" and is not used.
//! 4. Otherwise the event is an error: a time that can't be placed is not
//!    "now".
//!
//! The event's running-time offset (pad offsets between tsdemux and the
//! caller) is added, so the result compares with the running time of the
//! buffers at the pad where the event was seen, as long as no element in
//! between changed the segment.

use std::ffi::c_void;

use glib::translate::{FromGlibPtrFull, ToGlibPtr};

use crate::core::scte35::{PTS_MODULO, SpliceCommand, SpliceInfo};

/// Structure name of the events that carry an MPEG-TS SCTE-35 section.
pub const EVENT_NAME: &str = "scte-sit";

/// GType name of libgstmpegts's section.
const SECTION_TYPE: &str = "GstMpegtsSection";

/// A SCTE-35 cue seen on a pad.
#[derive(Debug, Clone)]
pub struct Scte35Event {
    pub info: SpliceInfo,
    /// The splice point in running time; `None`: immediately (no time).
    pub running_time: Option<gst::ClockTime>,
    /// Where `running_time` came from.
    pub time_source: TimeSource,
    /// The event's seqnum: the same on every pad tsdemux pushed it to.
    pub seqnum: gst::Seqnum,
}

/// How [`Scte35Event::running_time`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The section has no splice time: the splice is "now".
    Immediate,
    /// tsdemux's `running-time-map`.
    Demuxer,
    /// The section's PTS and tsdemux's `mpeg-pts-offset`.
    PtsOffset,
}

/// The SCTE-35 cue an event carries: `None` when the event is not one (any
/// event but a `scte-sit` one), an error (a message to warn with) when it
/// is one that can't be read (no section, a damaged section, libgstmpegts
/// not loadable, a time that can't be placed).
pub fn from_event(event: &gst::EventRef) -> Option<Result<Scte35Event, String>> {
    let s = event.structure()?;
    if s.name() != EVENT_NAME {
        return None;
    }
    Some(read(event, s))
}

fn read(event: &gst::EventRef, s: &gst::StructureRef) -> Result<Scte35Event, String> {
    let value = s
        .value("section")
        .map_err(|_| format!("{EVENT_NAME} event without a section: {s}"))?;
    let bytes = section_bytes(value)?;
    let info = SpliceInfo::parse(&bytes).map_err(|e| e.to_string())?;
    let (running_time, time_source) = match info.splice_pts() {
        None => (None, TimeSource::Immediate),
        Some(pts) => {
            let (ns, source) = running_time_ns(&info, pts, s).ok_or_else(|| {
                format!(
                    "SCTE-35 {} (event {:?}): splice PTS {pts} cannot be placed in running time \
                     (no running-time-map entry, no mpeg-pts-offset yet)",
                    info.class(),
                    info.event_id()
                )
            })?;
            let ns = ns.saturating_add_signed(event.running_time_offset());
            (Some(gst::ClockTime::from_nseconds(ns)), source)
        }
    };
    Ok(Scte35Event {
        info,
        running_time,
        time_source,
        seqnum: event.seqnum(),
    })
}

/// The running time (ns) of `pts` (the section's adjusted splice PTS).
fn running_time_ns(
    info: &SpliceInfo,
    pts: u64,
    s: &gst::StructureRef,
) -> Option<(u64, TimeSource)> {
    let key = match &info.command {
        SpliceCommand::TimeSignal { .. } => Some("splice-time".to_string()),
        SpliceCommand::Insert(i) if i.pts.is_some() => {
            Some(format!("event-{}-splice-time", i.event_id))
        }
        _ => None,
    };
    let mapped = key.and_then(|key| {
        s.get::<gst::Structure>("running-time-map")
            .ok()?
            .get::<u64>(key.as_str())
            .ok()
    });
    if let Some(ns) = mapped.filter(|&ns| ns != u64::MAX) {
        return Some((ns, TimeSource::Demuxer));
    }
    let offset = s
        .get::<u64>("mpeg-pts-offset")
        .ok()
        .filter(|&o| o % PTS_MODULO != 0)?;
    let ticks = (pts + offset % PTS_MODULO) % PTS_MODULO;
    Some((ticks_to_ns(ticks), TimeSource::PtsOffset))
}

/// 90 kHz ticks to nanoseconds, rounded to the nearest.
fn ticks_to_ns(ticks: u64) -> u64 {
    ((u128::from(ticks) * 100_000 + 4) / 9) as u64
}

/// The bytes of the `GstMpegtsSection` in `value`.
fn section_bytes(value: &glib::Value) -> Result<Vec<u8>, String> {
    if value.type_().name() != SECTION_TYPE {
        return Err(format!(
            "{EVENT_NAME} event: section field of type {}, not {SECTION_TYPE}",
            value.type_().name()
        ));
    }
    let get_data = mpegts::get_data()?;
    // SAFETY: the value holds a boxed GstMpegtsSection (type checked
    // above); g_value_get_boxed borrows it for as long as the event lives,
    // which outlives this call.
    let section = unsafe {
        glib::gobject_ffi::g_value_get_boxed(ToGlibPtr::<*const _>::to_glib_none(value).0)
    };
    if section.is_null() {
        return Err(format!("{EVENT_NAME} event: the section is NULL"));
    }
    // SAFETY: gst_mpegts_section_get_data takes a section and returns a new
    // GBytes (transfer full), which glib::Bytes owns and unrefs.
    let bytes = unsafe { glib::Bytes::from_glib_full(get_data(section)) };
    if bytes.is_empty() {
        return Err(format!(
            "{EVENT_NAME} event: the section carries no bytes (built by an application, never packetized)"
        ));
    }
    Ok(bytes.to_vec())
}

/// libgstmpegts, loaded at run time by its soname.
///
/// Only `gst_mpegts_section_get_data` is needed: linking libgstmpegts
/// would need its development files at build time (the unversioned `.so`)
/// for one function, and there are no Rust bindings for it. A section in
/// an event means tsdemux (or another user of the library) has it loaded
/// already, so the `dlopen` finds the copy in the process. When it can't be
/// loaded, reading a section is an error, never a crash.
mod mpegts {
    use super::*;
    use std::sync::OnceLock;

    pub type GetData = unsafe extern "C" fn(*mut c_void) -> *mut glib::ffi::GBytes;

    #[cfg(target_os = "macos")]
    const SONAME: &std::ffi::CStr = c"libgstmpegts-1.0.0.dylib";
    #[cfg(not(target_os = "macos"))]
    const SONAME: &std::ffi::CStr = c"libgstmpegts-1.0.so.0";

    /// A symbol of libgstmpegts (the library stays loaded for the life of
    /// the process).
    pub fn symbol(name: &std::ffi::CStr) -> Result<*mut c_void, String> {
        static LIB: OnceLock<Result<usize, String>> = OnceLock::new();
        let lib = LIB
            .get_or_init(|| {
                // SAFETY: dlopen with a NUL-terminated name; dlerror's
                // message is copied at once.
                unsafe {
                    let handle = libc::dlopen(SONAME.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                    if handle.is_null() {
                        Err(format!(
                            "cannot load {} to read MPEG-TS sections: {}",
                            SONAME.to_string_lossy(),
                            dl_error()
                        ))
                    } else {
                        Ok(handle as usize)
                    }
                }
            })
            .clone()?;
        // SAFETY: a handle from dlopen that is never closed, a
        // NUL-terminated name.
        let sym = unsafe { libc::dlsym(lib as *mut c_void, name.as_ptr()) };
        if sym.is_null() {
            return Err(format!(
                "{} has no {}: {}",
                SONAME.to_string_lossy(),
                name.to_string_lossy(),
                dl_error()
            ));
        }
        Ok(sym)
    }

    pub fn get_data() -> Result<GetData, String> {
        static F: OnceLock<Result<usize, String>> = OnceLock::new();
        let f = F
            .get_or_init(|| symbol(c"gst_mpegts_section_get_data").map(|p| p as usize))
            .clone()?;
        // SAFETY: the symbol is gst_mpegts_section_get_data, whose C
        // signature is GBytes *(GstMpegtsSection *).
        Ok(unsafe { std::mem::transmute::<usize, GetData>(f) })
    }

    fn dl_error() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated string that
        // stays valid until the next dl* call of this thread.
        unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown error".into()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::scte35::crc32;

    fn init() {
        gst::init().unwrap();
    }

    /// A section of `bytes` as libgstmpegts makes them (PID 500).
    fn section_value(bytes: &[u8]) -> glib::SendValue {
        type New = unsafe extern "C" fn(u16, *mut u8, usize) -> *mut c_void;
        type GetType = unsafe extern "C" fn() -> glib::ffi::GType;
        unsafe {
            let new: New = std::mem::transmute(mpegts::symbol(c"gst_mpegts_section_new").unwrap());
            let get_type: GetType =
                std::mem::transmute(mpegts::symbol(c"gst_mpegts_section_get_type").unwrap());
            // The section takes the bytes (g_free'd with it).
            let data = glib::ffi::g_malloc(bytes.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            let section = new(500, data, bytes.len());
            assert!(!section.is_null());
            let mut v = glib::Value::from_type(glib::translate::from_glib(get_type()));
            glib::gobject_ffi::g_value_take_boxed(
                glib::translate::ToGlibPtrMut::to_glib_none_mut(&mut v).0,
                section,
            );
            v.into_send_value()
        }
    }

    /// A time_signal at `pts` with `pts_adjustment`, no descriptors.
    fn time_signal(pts_adjustment: u64, pts: Option<u64>) -> Vec<u8> {
        let mut s = vec![0xFC, 0, 0, 0, (pts_adjustment >> 32) as u8 & 1];
        s.extend_from_slice(&(pts_adjustment as u32).to_be_bytes());
        s.push(0xFF);
        let time = match pts {
            Some(p) => vec![
                0xFE | ((p >> 32) as u8 & 1),
                (p >> 24) as u8,
                (p >> 16) as u8,
                (p >> 8) as u8,
                p as u8,
            ],
            None => vec![0x7F],
        };
        s.extend_from_slice(&[0xFF, 0xF0, time.len() as u8, 0x06]);
        s.extend(time);
        s.extend_from_slice(&[0, 0]);
        let len = s.len() + 4 - 3;
        s[1] = 0x30 | (len >> 8) as u8;
        s[2] = len as u8;
        let crc = crc32(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    fn event(bytes: &[u8], map: Option<gst::Structure>, offset: Option<u64>) -> gst::Event {
        let mut s = gst::Structure::new_empty(EVENT_NAME);
        s.set_value("section", section_value(bytes));
        if let Some(map) = map {
            s.set("running-time-map", map);
        }
        if let Some(offset) = offset {
            s.set("mpeg-pts-offset", offset);
        }
        gst::event::CustomDownstream::new(s)
    }

    #[test]
    fn other_events_are_none() {
        init();
        assert!(from_event(&gst::event::Eos::new()).is_none());
        let e = gst::event::CustomDownstream::new(gst::Structure::new_empty("pat"));
        assert!(from_event(&e).is_none());
    }

    #[test]
    fn a_scte_event_without_a_section_is_an_error() {
        init();
        let e = gst::event::CustomDownstream::new(gst::Structure::new_empty(EVENT_NAME));
        let err = from_event(&e).unwrap().unwrap_err();
        assert!(err.contains("without a section"), "{err}");
        let e = gst::event::CustomDownstream::new(
            gst::Structure::builder(EVENT_NAME)
                .field("section", 5i32)
                .build(),
        );
        let err = from_event(&e).unwrap().unwrap_err();
        assert!(err.contains("GstMpegtsSection"), "{err}");
    }

    #[test]
    fn running_time_from_the_demuxer_map() {
        init();
        let map = gst::Structure::builder("running-time-map")
            .field("splice-time", 4_000_000_000u64)
            .build();
        let e = event(&time_signal(0, Some(123)), Some(map), Some(5));
        let ev = from_event(&e).unwrap().unwrap();
        assert_eq!(ev.running_time, Some(gst::ClockTime::from_seconds(4)));
        assert_eq!(ev.time_source, TimeSource::Demuxer);
        assert_eq!(ev.info.class(), "time_signal");
        assert_eq!(ev.seqnum, e.seqnum());
    }

    #[test]
    fn running_time_from_the_pts_offset() {
        init();
        // An invalid map entry: the offset decides. (pts + adjustment +
        // offset) wraps at 2^33.
        let map = gst::Structure::builder("running-time-map")
            .field("splice-time", u64::MAX)
            .build();
        let offset = PTS_MODULO - 90_000;
        let e = event(&time_signal(45_000, Some(405_000)), Some(map), Some(offset));
        let ev = from_event(&e).unwrap().unwrap();
        assert_eq!(ev.running_time, Some(gst::ClockTime::from_seconds(4)));
        assert_eq!(ev.time_source, TimeSource::PtsOffset);
    }

    #[test]
    fn the_event_running_time_offset_is_applied() {
        init();
        let map = gst::Structure::builder("running-time-map")
            .field("splice-time", 4_000_000_000u64)
            .build();
        let mut e = event(&time_signal(0, Some(1)), Some(map), None);
        e.make_mut().set_running_time_offset(-1_000_000_000);
        let ev = from_event(&e).unwrap().unwrap();
        assert_eq!(ev.running_time, Some(gst::ClockTime::from_seconds(3)));
    }

    #[test]
    fn immediate_and_unplaceable() {
        init();
        let ev = from_event(&event(&time_signal(0, None), None, None))
            .unwrap()
            .unwrap();
        assert_eq!(
            (ev.running_time, ev.time_source),
            (None, TimeSource::Immediate)
        );
        let err = from_event(&event(&time_signal(0, Some(9)), None, None))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("cannot be placed"), "{err}");
        // Before its first output segment tsdemux sends NONE and offset 0.
        let map = gst::Structure::builder("running-time-map")
            .field("splice-time", u64::MAX)
            .build();
        let err = from_event(&event(&time_signal(0, Some(9)), Some(map), Some(0)))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("cannot be placed"), "{err}");
    }

    #[test]
    fn a_damaged_section_is_an_error() {
        init();
        let mut bytes = time_signal(0, Some(9));
        let n = bytes.len();
        bytes[n - 1] ^= 0xFF;
        let err = from_event(&event(&bytes, None, Some(0)))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("CRC-32 mismatch"), "{err}");
    }
}
