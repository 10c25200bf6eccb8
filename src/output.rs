// SPDX-License-Identifier: MPL-2.0
//! What the elements that turn picked frames into files on a worker thread
//! (`thumbnailer`, `motionclipenc`) share: back-pressure between the
//! streaming thread and the worker, the worker's side of the src pad, and
//! numbered files with `max-files`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use gst::prelude::*;

use crate::core::atomic::atomic_write;
use crate::core::pattern::format_index;

/// Frames handed to the worker and not yet done.
///
/// With a live source the streaming thread never waits: when `max` frames
/// are already waiting the caller drops the next one (and warns). Without
/// one (files, tests) the streaming thread waits as it would on a full
/// queue, so that the result does not depend on the machine's speed.
pub struct WorkQueue {
    queued: Mutex<usize>,
    signal: Condvar,
    /// Whether upstream is live: 0 = not asked yet, 1 = live, 2 = not.
    live: AtomicU8,
    max: usize,
}

impl WorkQueue {
    pub fn new(max: usize) -> Self {
        Self {
            queued: Mutex::new(0),
            signal: Condvar::new(),
            live: AtomicU8::new(0),
            max: max.max(1),
        }
    }

    /// Forgets the count and the liveness (a new start).
    pub fn reset(&self) {
        *self.queued.lock().unwrap() = 0;
        self.live.store(0, Ordering::SeqCst);
    }

    /// Whether the source upstream of `sinkpad` is live (asked once).
    pub fn is_live(&self, sinkpad: &gst::Pad) -> bool {
        if self.live.load(Ordering::SeqCst) == 0 {
            let mut q = gst::query::Latency::new();
            let live = sinkpad.peer_query(&mut q) && q.result().0;
            gst::debug!(gst::CAT_DEFAULT, obj = sinkpad, "upstream is live: {live}");
            self.live.store(if live { 1 } else { 2 }, Ordering::SeqCst);
        }
        self.live.load(Ordering::SeqCst) == 1
    }

    /// Without a live source, waits until there is room (or `flushing`);
    /// with one, never waits. Says whether there is room.
    pub fn wait_for_room(&self, sinkpad: &gst::Pad, flushing: &AtomicBool) -> bool {
        let live = self.is_live(sinkpad);
        let mut n = self.queued.lock().unwrap();
        if live {
            return *n < self.max;
        }
        while *n >= self.max && !flushing.load(Ordering::SeqCst) {
            n = self
                .signal
                .wait_timeout(n, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        true
    }

    pub fn is_full(&self) -> bool {
        *self.queued.lock().unwrap() >= self.max
    }

    /// One more frame for the worker.
    pub fn add(&self) {
        *self.queued.lock().unwrap() += 1;
    }

    /// The worker is done with a frame.
    pub fn done(&self) {
        let mut n = self.queued.lock().unwrap();
        *n = n.saturating_sub(1);
        self.signal.notify_all();
    }

    /// Lets a waiting streaming thread look at its flushing flag again.
    pub fn wake(&self) {
        let _n = self.queued.lock().unwrap();
        self.signal.notify_all();
    }
}

/// The worker's side of the src pad: stream-start and caps before the
/// first event or buffer, nothing of an older generation (before a flush).
pub struct SrcOutput {
    caps_sent: Option<gst::Caps>,
    stream_prefix: &'static str,
}

impl SrcOutput {
    /// `stream_prefix` names the stream id (the element's name).
    pub fn new(stream_prefix: &'static str) -> Self {
        Self {
            caps_sent: None,
            stream_prefix,
        }
    }

    /// Pushes stream-start (if none yet) and `caps` when they are not out.
    pub fn ensure_caps(&mut self, srcpad: &gst::Pad, caps: gst::Caps) {
        if self.caps_sent.as_ref() != Some(&caps) {
            if srcpad.sticky_event::<gst::event::StreamStart>(0).is_none() {
                let id = format!("{}-{:p}", self.stream_prefix, srcpad.as_ptr());
                srcpad.push_event(gst::event::StreamStart::new(&id));
            }
            srcpad.push_event(gst::event::Caps::new(&caps));
            self.caps_sent = Some(caps);
        }
    }

    /// Pushes `event` unless `generation` moved on from `expected` (a
    /// flush came in between); `caps` go first when they are not out yet.
    /// `push_lock` is the lock FLUSH_STOP takes too.
    pub fn push_event(
        &mut self,
        srcpad: &gst::Pad,
        push_lock: &Mutex<()>,
        generation: &AtomicU64,
        expected: u64,
        event: gst::Event,
        caps: gst::Caps,
    ) -> bool {
        let _push = push_lock.lock().unwrap();
        if generation.load(Ordering::SeqCst) != expected {
            return false;
        }
        if !matches!(event.view(), gst::EventView::StreamStart(_)) {
            self.ensure_caps(srcpad, caps);
        }
        srcpad.push_event(event)
    }

    /// Pushes one output buffer (same rules as [`Self::push_event`]).
    /// Flushing, not-linked and EOS downstream are not errors.
    pub fn push(
        &mut self,
        srcpad: &gst::Pad,
        push_lock: &Mutex<()>,
        generation: &AtomicU64,
        expected: u64,
        buffer: gst::Buffer,
        caps: gst::Caps,
    ) -> Result<(), gst::FlowError> {
        let _push = push_lock.lock().unwrap();
        if generation.load(Ordering::SeqCst) != expected {
            return Ok(());
        }
        self.ensure_caps(srcpad, caps);
        match srcpad.push(buffer) {
            Ok(_)
            | Err(gst::FlowError::Flushing)
            | Err(gst::FlowError::NotLinked)
            | Err(gst::FlowError::Eos) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Ends a branch at EOS: when the element is flagged a sink (nothing linked
/// to its src pad), tells the bin directly that this branch is done.
pub fn post_eos_if_sink(element: &gst::Element) {
    if element.element_flags().contains(gst::ElementFlags::SINK) {
        let _ = element.post_message(gst::message::Eos::builder().src(element).build());
    }
}

/// Sink queries: the input is not passed on, so upstream allocates as it
/// likes; the rest as by default.
pub fn sink_query(element: &gst::Element, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
    match query.view_mut() {
        gst::QueryViewMut::Allocation(_) => true,
        _ => gst::Pad::query_default(pad, Some(element), query),
    }
}

/// Src events: QoS and renegotiation concern the outputs, not the video
/// upstream (a late output must not make an encoder drop frames).
pub fn src_event(element: &gst::Element, pad: &gst::Pad, event: gst::Event) -> bool {
    match event.view() {
        gst::EventView::Qos(_) | gst::EventView::Reconfigure(_) => true,
        _ => gst::Pad::event_default(pad, Some(element), event),
    }
}

/// Src queries: the caps are `caps` (what the settings say).
pub fn src_query(
    element: &gst::Element,
    pad: &gst::Pad,
    query: &mut gst::QueryRef,
    caps: gst::Caps,
) -> bool {
    match query.view_mut() {
        gst::QueryViewMut::Caps(q) => {
            let caps = match q.filter() {
                Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                None => caps,
            };
            q.set_result(&caps);
            true
        }
        _ => gst::Pad::query_default(pad, Some(element), query),
    }
}

/// Numbered files of a `location` pattern, the newest `max-files` kept.
#[derive(Default)]
pub struct FileSeries {
    written: VecDeque<PathBuf>,
}

impl FileSeries {
    /// The path of file `index`; a pattern that cannot be used gives
    /// `fallback` (with the index) and the reason.
    pub fn path(pattern: &str, index: u64, fallback: &str) -> (PathBuf, Option<String>) {
        match format_index(pattern, index) {
            Ok(p) => (PathBuf::from(p), None),
            Err(e) => (
                PathBuf::from(format_index(fallback, index).unwrap_or_default()),
                Some(e.to_string()),
            ),
        }
    }

    /// Records a written file and deletes the oldest beyond `max_files`
    /// (0 = keep all); returns the deletions that failed.
    pub fn add(&mut self, path: PathBuf, max_files: u32) -> Vec<String> {
        self.written.push_back(path);
        let mut failed = Vec::new();
        while max_files > 0 && self.written.len() > max_files as usize {
            if let Some(old) = self.written.pop_front()
                && let Err(e) = std::fs::remove_file(&old)
            {
                failed.push(format!("cannot delete {}: {e}", old.display()));
            }
        }
        failed
    }
}

/// Writes a file atomically; the error names the path.
pub fn write_file(path: &Path, bytes: &[u8], sync: bool) -> Result<(), String> {
    atomic_write(path, bytes, sync)
        .map_err(|e| format!("Could not write {}: {}", path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_series_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut series = FileSeries::default();
        for i in 0..4 {
            let (p, e) =
                FileSeries::path(&dir.path().join("f-%02d.x").display().to_string(), i, "x");
            assert!(e.is_none());
            write_file(&p, b"x", false).unwrap();
            assert!(series.add(p, 2).is_empty());
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["f-02.x", "f-03.x"]);
        let (p, e) = FileSeries::path("a-%d-%d", 3, "fallback-%05d.x");
        assert_eq!(p, PathBuf::from("fallback-00003.x"));
        assert!(e.is_some());
        let e = write_file(&dir.path().join("f-02.x/y"), b"x", false).unwrap_err();
        assert!(e.contains("f-02.x/y"), "{e}");
    }
}
