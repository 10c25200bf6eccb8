// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink's writer thread: the planner's commands on the recorder, and
//! the element messages that announce segments and the session's end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::hls::clip::ClipError;
use crate::hls::markers::{Added, Marker};
use crate::hls::planner::Command;
use crate::hls::recorder::{MarkError, Recorder};

/// Carries out the planner's commands on the recorder until the queue
/// closes; a write error is an element error, and what follows is dropped.
pub(super) fn run(
    weak: glib::WeakRef<crate::hlsclipsink::HlsClipSink>,
    mut recorder: Recorder,
    rx: crate::media::Receiver<Command>,
    failed: Arc<AtomicBool>,
) {
    let mut segment_rt: Option<i64> = None;
    let mut finished = false;
    let mut auto = AutoClips::default();
    let fail = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        failed.store(true, Ordering::SeqCst);
        if let Some(obj) = weak.upgrade() {
            gst::element_error!(
                obj,
                gst::ResourceError::Write,
                ("Could not write {what} in {}: {e}", path.display())
            );
        }
    };
    while let Ok(cmd) = rx.recv() {
        if failed.load(Ordering::SeqCst) {
            continue;
        }
        let dir = recorder.session_dir().to_path_buf();
        match cmd {
            Command::Init {
                configs,
                delays,
                tracks,
            } => {
                if let Err(e) = recorder.write_init(&configs, &delays, &tracks) {
                    fail("the init segment", &dir, &e);
                }
            }
            Command::Append(fragment) => {
                segment_rt.get_or_insert(fragment.start.0);
                if let Err(e) = recorder.append(&fragment) {
                    fail("a segment", &dir, &e);
                }
            }
            Command::Discontinuity => {
                if let Err(e) = recorder.discontinuity() {
                    fail("a segment", &dir, &e);
                }
            }
            Command::Close => close(&weak, &mut recorder, &mut segment_rt, &fail),
            Command::Mark {
                marker,
                splice,
                reply,
            } => {
                let result = mark(&weak, &mut recorder, marker, splice);
                if let Ok(m) = &result {
                    auto.consider(&weak, m);
                }
                if let Some(reply) = reply {
                    let _ = reply.try_send(result);
                }
            }
            Command::Finish { eos } => {
                finished = true;
                close(&weak, &mut recorder, &mut segment_rt, &fail);
                if let Err(e) = recorder.finish_session(Utc::now()) {
                    fail("the final playlist", &dir, &e);
                }
                // What the session recorded of the markers still waiting.
                auto.submit(&weak, recorder.media_id(), u64::MAX);
                if let Some(obj) = weak.upgrade() {
                    let s = gst::Structure::builder("hlsclipsink-session-ended")
                        .field("media-id", recorder.media_id())
                        .field("location", dir.display().to_string())
                        .field("duration", gst::ClockTime::from_nseconds(recorder.end()))
                        .field("segments", recorder.segments().len() as u64)
                        .build();
                    let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
                    if eos {
                        let _ = obj.post_message(gst::message::Eos::builder().src(&obj).build());
                    }
                }
            }
        }
        auto.submit(&weak, recorder.media_id(), recorder.end());
    }
    // Stopped without EOS, or after a write error: the session is closed
    // (ENDLIST, `ended`) as far as the disk allows; what is not written
    // now, recovery closes at the next start.
    if !finished {
        let _ = recorder.finish_session(Utc::now());
    }
}

/// Markers `marker-clips` asks to clip, waiting until their range is
/// recorded.
#[derive(Default)]
struct AutoClips {
    /// (marker, where its clip ends, ns).
    waiting: Vec<(Marker, u64)>,
    /// Markers clipped already (an in ending an out after its planned
    /// duration does not clip it again).
    done: std::collections::HashSet<String>,
}

impl AutoClips {
    /// A marker added or ended: clipped once its clip's end is recorded;
    /// one that has only a planned duration, at its planned end (unless
    /// its actual end comes first).
    fn consider(&mut self, weak: &glib::WeakRef<crate::hlsclipsink::HlsClipSink>, m: &Marker) {
        let Some(obj) = weak.upgrade() else { return };
        if self.done.contains(&m.id) || !obj.imp().wants_clip(m) {
            return;
        }
        let end = m.clip_range(None, None).1;
        self.waiting.retain(|(w, _)| w.id != m.id);
        self.waiting.push((m.clone(), end));
    }

    /// Clips the markers whose clip ends at or before `recorded` (ns).
    fn submit(
        &mut self,
        weak: &glib::WeakRef<crate::hlsclipsink::HlsClipSink>,
        media_id: &str,
        recorded: u64,
    ) {
        if self.waiting.is_empty() {
            return;
        }
        let Some(obj) = weak.upgrade() else { return };
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, end)| *end <= recorded);
        self.waiting = wait;
        for (m, _) in ready {
            self.done.insert(m.id.clone());
            obj.imp().marker_clip(media_id, &m);
        }
    }
}

/// Adds a marker and announces it (`hlsclipsink-marker`); a marker that
/// could not be stored is a warning (the recording goes on).
fn mark(
    weak: &glib::WeakRef<crate::hlsclipsink::HlsClipSink>,
    recorder: &mut Recorder,
    marker: Marker,
    splice: Option<Option<bool>>,
) -> Result<Marker, ClipError> {
    let obj = weak.upgrade();
    match recorder.mark(marker.clone(), splice) {
        Ok(Added::New(m)) | Ok(Added::Ended(m)) => {
            if let Some(obj) = obj {
                let s =
                    super::actions::marker_structure("hlsclipsink-marker", recorder.media_id(), &m);
                let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
            }
            Ok(m)
        }
        // A splice event seen before: nothing new.
        Ok(Added::Repeat) => Ok(marker),
        Err(MarkError::Refused(e)) => {
            if let Some(obj) = obj {
                gst::warning!(super::CAT, obj = obj, "marker {:?} refused: {e}", marker.id);
            }
            Err(e)
        }
        Err(MarkError::Io(e)) => {
            let why = format!(
                "Could not store marker {:?} in {}: {e}",
                marker.id,
                recorder.session_dir().display()
            );
            if let Some(obj) = obj {
                gst::element_warning!(obj, gst::ResourceError::Write, ("{why}"));
            }
            Err(ClipError::Storage(why))
        }
    }
}

/// Ends the open segment and announces it.
fn close(
    weak: &glib::WeakRef<crate::hlsclipsink::HlsClipSink>,
    recorder: &mut Recorder,
    segment_rt: &mut Option<i64>,
    fail: &dyn Fn(&str, &std::path::Path, &dyn std::fmt::Display),
) {
    let dir = recorder.session_dir().to_path_buf();
    match recorder.close_segment() {
        Ok(closed) => {
            let Some(obj) = weak.upgrade() else { return };
            for (rendition, seg) in closed {
                let s = gst::Structure::builder("hlsclipsink-segment-added")
                    .field(
                        "location",
                        dir.join(&rendition).join(&seg.uri).display().to_string(),
                    )
                    .field("media-id", recorder.media_id())
                    .field("rendition", rendition)
                    .field("sequence", seg.sequence)
                    .field(
                        "running-time",
                        gst::ClockTime::from_nseconds(segment_rt.unwrap_or(0).max(0) as u64),
                    )
                    .field("recording-time", gst::ClockTime::from_nseconds(seg.start))
                    .field("duration", gst::ClockTime::from_nseconds(seg.duration))
                    .field(
                        "utc",
                        seg.pdt
                            .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default(),
                    )
                    .field("bytes", seg.bytes)
                    .build();
                let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
            }
            *segment_rt = None;
        }
        Err(e) => fail("a playlist", &dir, &e),
    }
}
