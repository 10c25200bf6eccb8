// SPDX-License-Identifier: MPL-2.0
//! periodicclipper's writer thread: clips written in cut order, `max-files`
//! kept, `periodicclipper-clip-ready` posted, and EOS once every cut clip
//! was handled.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{CAT, PeriodicClipper};
use crate::core::TrackKind;
use crate::core::periodic::Trigger;
use crate::mp4::Mp4Clip;

/// A clip for the worker to write.
pub(super) struct Job {
    pub(super) clip: Mp4Clip,
    pub(super) seq: u64,
    /// Chosen when the job is prepared (promised to `clip-now`) or just
    /// before it is sent (pattern or `format-location-full`).
    pub(super) location: Option<PathBuf>,
    pub(super) index: u32,
    pub(super) trigger: Trigger,
    pub(super) start_running_time: i64,
    pub(super) recording_time: i64,
    pub(super) duration: i64,
    pub(super) utc: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) frames: Vec<(TrackKind, usize)>,
}

pub(super) enum Command {
    Write(Box<Job>),
    /// Every track has ended and `clips` clips were cut in all: post EOS
    /// once that many were handled. (The last clips may reach the writer
    /// after this: selections are made under the state lock by one
    /// streaming thread and dispatched by it afterwards, so the thread that
    /// finishes can dispatch first.)
    Eos {
        clips: u64,
    },
}

pub(super) fn writer_loop(
    weak: glib::WeakRef<crate::periodicclipper::PeriodicClipper>,
    rx: crate::media::Receiver<Command>,
    failed: Arc<AtomicBool>,
) {
    let mut written: VecDeque<PathBuf> = VecDeque::new();
    let mut handled = 0u64;
    let mut eos_after: Option<u64> = None;
    while let Ok(cmd) = rx.recv() {
        let Some(obj) = weak.upgrade() else { break };
        match cmd {
            Command::Eos { clips } => eos_after = Some(clips),
            Command::Write(job) => {
                write_job(&obj, &job, &failed, &mut written);
                handled += 1;
            }
        }
        if eos_after.is_some_and(|clips| handled >= clips) {
            eos_after = None;
            gst::debug!(CAT, obj = obj, "all clips written, posting EOS");
            let _ = obj.post_message(gst::message::Eos::builder().src(&obj).build());
        }
    }
}

/// Writes one clip (after a write error, nothing more is written), keeps
/// `max-files`, and posts `periodicclipper-clip-ready`.
fn write_job(
    obj: &crate::periodicclipper::PeriodicClipper,
    job: &Job,
    failed: &AtomicBool,
    written: &mut VecDeque<PathBuf>,
) {
    let imp = obj.imp();
    if failed.load(Ordering::SeqCst) {
        return;
    }
    let started = Instant::now();
    let Some(location) = job.location.clone() else {
        return;
    };
    if let Some(dir) = location.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        fail(imp, failed, &location, &e.to_string());
        return;
    }
    match job.clip.write_file(&location, true) {
        Ok(stats) => {
            gst::info!(
                CAT,
                obj = obj,
                "wrote {} ({} bytes, {:?}) in {:?}",
                location.display(),
                stats.bytes,
                gst::ClockTime::from_nseconds(stats.duration),
                started.elapsed()
            );
            written.push_back(location.clone());
            let max_files = imp.settings.lock().unwrap().max_files as usize;
            while max_files > 0 && written.len() > max_files {
                if let Some(old) = written.pop_front()
                    && let Err(e) = std::fs::remove_file(&old)
                {
                    gst::warning!(CAT, obj = obj, "cannot delete {}: {e}", old.display());
                }
            }
            post_clip_ready(obj, job, &location, stats.bytes, stats.duration);
        }
        Err(crate::mp4::progressive::WriteError::Empty) => {
            gst::debug!(CAT, obj = obj, "clip {} is empty, skipped", job.index);
        }
        Err(e) => fail(imp, failed, &location, &e.to_string()),
    }
}

fn fail(imp: &PeriodicClipper, failed: &AtomicBool, location: &Path, reason: &str) {
    failed.store(true, Ordering::SeqCst);
    gst::element_imp_error!(
        imp,
        gst::ResourceError::OpenWrite,
        ("Could not write clip {}: {}", location.display(), reason)
    );
}

fn post_clip_ready(
    obj: &crate::periodicclipper::PeriodicClipper,
    job: &Job,
    location: &Path,
    bytes: u64,
    duration: u64,
) {
    let video = job
        .frames
        .iter()
        .filter(|f| f.0 == TrackKind::Video)
        .map(|f| f.1)
        .sum::<usize>() as u64;
    let audio = job
        .frames
        .iter()
        .filter(|f| f.0 == TrackKind::Audio)
        .map(|f| f.1)
        .sum::<usize>() as u64;
    let rt = job.start_running_time.max(0) as u64;
    let s = gst::Structure::builder("periodicclipper-clip-ready")
        .field("location", location.display().to_string())
        .field("index", job.index)
        .field("trigger", job.trigger.as_str())
        .field("running-time", gst::ClockTime::from_nseconds(rt))
        .field("duration", gst::ClockTime::from_nseconds(duration))
        .field(
            "cut-duration",
            gst::ClockTime::from_nseconds(job.duration.max(0) as u64),
        )
        .field(
            "recording-time",
            gst::ClockTime::from_nseconds(job.recording_time.max(0) as u64),
        )
        .field(
            "utc",
            job.utc
                .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        )
        .field("bytes", bytes)
        .field("video-frames", video)
        .field("audio-frames", audio)
        .build();
    let _ = obj.post_message(gst::message::Element::builder(s).src(obj).build());
    obj.imp().clip_written(crate::http::ClipReady {
        location: location.display().to_string(),
        index: u64::from(job.index),
        trigger: job.trigger.as_str().to_string(),
        duration,
        recording_time: job.recording_time.max(0) as u64,
        utc: job
            .utc
            .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default(),
        bytes,
    });
}
