// SPDX-License-Identifier: MPL-2.0
//! Clip requests for one stream, as hlsclipsink's action signals and the
//! HTTP API make them: finds the session (the live one, a stored one, or
//! one retention deleted), waits for media at the live edge, and runs MP4
//! clips on a pool of worker threads with a bounded queue. Nothing here
//! runs on a streaming thread.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use super::clip::{self, ClipError, ClipInfo, ClipRequest, Placement, Preview, Range};
use super::index::{LiveIndex, SessionIndex};
use super::ladder::{self, Pick, Rendition};
use super::markers::{MarkInput, Marker, Source, When};
use super::planner::Command;
use super::sessions::{SessionsFile, State, is_safe_id};
use super::still::{StillCache, StillFrames};
use crate::mp4::Mp4Clip;

use crate::core::{NS, TrackKind};
use bytes::Bytes;

/// Low-latency requests (blocking reloads, preload hints) of one stream
/// that may wait at once.
const MAX_BLOCKING: usize = 256;

/// Storyboard sprites kept (one per session).
const STORYBOARDS: usize = 4;

/// Limits of one stream's clip requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest clip, ns.
    pub max_clip: u64,
    /// Longest preview, ns.
    pub max_preview: u64,
    /// Clips made at the same time.
    pub workers: usize,
    /// Clip requests waiting for a worker before new ones are refused.
    pub queue: usize,
    /// Longest animation (`animated.gif|mp4`), ns.
    pub max_animated: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clip: 60 * NS,
            max_preview: 300 * NS,
            workers: 2,
            queue: 32,
            max_animated: 10 * NS,
        }
    }
}

/// A finished MP4 clip request.
#[derive(Debug, Clone)]
pub struct ClipDone {
    pub id: u64,
    pub result: Result<(PathBuf, ClipInfo, u64), ClipError>,
}

/// Exports kept for `GET /{id}/exports/{n}` (the oldest's file goes when
/// a newer one comes).
const EXPORTS_KEPT: usize = 32;

/// Where an export stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportState {
    Queued,
    /// Share done, 0..1.
    Running(f64),
    Done {
        path: PathBuf,
        bytes: u64,
        info: ClipInfo,
    },
    Failed(ClipError),
}

/// An export asked over HTTP.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub id: u64,
    pub profile: String,
    pub state: ExportState,
}

impl ExportJob {
    /// As `GET /{id}/exports/{n}` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "export_id": self.id, "profile": self.profile });
        match &self.state {
            ExportState::Queued => {
                v["state"] = "queued".into();
                v["progress"] = 0.0.into();
            }
            ExportState::Running(p) => {
                v["state"] = "running".into();
                v["progress"] = (*p).into();
            }
            ExportState::Done { bytes, info, .. } => {
                v["state"] = "done".into();
                v["progress"] = 1.0.into();
                v["bytes"] = (*bytes).into();
                v["media_id"] = info.media_id.clone().into();
                v["start"] = (info.start as f64 / 1e9).into();
                v["duration"] = (info.duration() as f64 / 1e9).into();
            }
            ExportState::Failed(e) => {
                v["state"] = "failed".into();
                v["error"] = e.to_string().into();
                v["status"] = e.status().into();
                v["kind"] = e.kind().into();
            }
        }
        v
    }
}

/// Who hears of finished HTTP exports (the element's webhook).
type ExportNotify = Arc<dyn Fn(serde_json::Value) + Send + Sync>;

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads with a bounded queue: `submit` never blocks.
struct Pool {
    tx: Mutex<Option<mpsc::SyncSender<Job>>>,
    workers: usize,
    queue: usize,
    /// Jobs queued or running.
    pending: Arc<AtomicUsize>,
}

impl Pool {
    fn new(workers: usize, queue: usize) -> Self {
        Self {
            tx: Mutex::new(None),
            workers: workers.max(1),
            queue,
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn submit(&self, job: Job) -> Result<(), ClipError> {
        let mut tx = self.tx.lock().unwrap();
        if tx.is_none() {
            let (sender, rx) = mpsc::sync_channel::<Job>(self.queue);
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.workers {
                let rx = rx.clone();
                let pending = self.pending.clone();
                std::thread::Builder::new()
                    .name(format!("hlsclipsink-clip-{i}"))
                    .spawn(move || {
                        crate::media::background_thread();
                        loop {
                            let job = rx.lock().unwrap().recv();
                            let Ok(job) = job else { break };
                            job();
                            pending.fetch_sub(1, Ordering::SeqCst);
                        }
                    })
                    .map_err(|e| ClipError::Storage(format!("cannot start a clip worker: {e}")))?;
            }
            *tx = Some(sender);
        }
        let busy = || {
            ClipError::Busy(format!(
                "{} clips are being made or waiting; try again shortly",
                self.workers + self.queue
            ))
        };
        if self.pending.load(Ordering::SeqCst) >= self.workers + self.queue {
            return Err(busy());
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        match tx.as_ref().expect("created above").try_send(job) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                Err(busy())
            }
        }
    }
}

/// The permits to cut clips that every path shares (action signals and
/// HTTP): at most `workers` cut at once and `queue` more wait; past that a
/// request is refused as busy at once.
struct Permits {
    workers: usize,
    queue: usize,
    /// (cutting, waiting)
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

impl Permits {
    fn new(workers: usize, queue: usize) -> Self {
        Self {
            workers: workers.max(1),
            queue,
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` holding a permit, waiting for one (blocking: call it from a
    /// worker or blocking-pool thread) unless the queue is full.
    fn run<T>(&self, f: impl FnOnce() -> Result<T, ClipError>) -> Result<T, ClipError> {
        {
            let mut st = self.state.lock().unwrap();
            if st.0 >= self.workers {
                if st.1 >= self.queue {
                    return Err(ClipError::Busy(format!(
                        "{} clips are being made and {} are waiting; try again shortly",
                        self.workers, self.queue
                    )));
                }
                st.1 += 1;
                while st.0 >= self.workers {
                    st = self.freed.wait(st).unwrap();
                }
                st.1 -= 1;
            }
            st.0 += 1;
        }
        // Released however `f` ends (an error or a panic).
        struct Release<'a>(&'a Permits);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                st.0 -= 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        f()
    }
}

/// How far past the live edge a marker may start (ns).
const MARK_AHEAD: u64 = 60 * NS;

/// Clip requests of one stream (`{location}/{stream-id}`).
pub struct ClipService {
    stream_dir: PathBuf,
    live: Arc<LiveIndex>,
    limits: Limits,
    pool: Pool,
    permits: Permits,
    next_id: AtomicU64,
    stills: StillCache,
    /// Storyboard sprites by session and recorded end (ns), newest first.
    storyboards: Mutex<VecDeque<(String, u64, Bytes)>>,
    /// Low-latency requests waiting.
    blocking: AtomicUsize,
    /// The queue of the writer thread recording the live session (markers
    /// go there).
    writer: Mutex<Option<crate::media::Sender<Command>>>,
    /// Export profiles, and the pool that runs exports (one at a time:
    /// an encoder uses every core).
    profiles: Mutex<Vec<crate::frames::export::Profile>>,
    export_pool: Pool,
    exports: Mutex<VecDeque<Arc<Mutex<ExportJob>>>>,
    export_notify: Mutex<Option<ExportNotify>>,
}

/// A low-latency live playlist to render: the rendition's live index and
/// the other renditions' newest (name, msn, part).
pub struct LowLatency {
    pub media_id: String,
    pub rendition: Option<String>,
    pub index: SessionIndex,
    pub reports: Vec<(String, u64, Option<u64>)>,
    pub part_target: u64,
}

/// Where a request's session is.
enum Found {
    Live(String),
    /// Its renditions, the leading one first.
    Stored(Vec<SessionIndex>),
}

/// The renditions of a session (`all`, the leading one first) that `pick`
/// asks for: one, and with `audio` a ladder's default audio rendition after
/// a picked video one (an MP4 clip carries both).
fn pick<'a>(
    all: &'a [SessionIndex],
    pick: &Pick,
    audio: bool,
) -> Result<Vec<&'a SessionIndex>, ClipError> {
    let Some(first) = all.first() else {
        return Err(ClipError::NotFound("the session has no media".into()));
    };
    if first.rendition.is_none() {
        // The single layout: its one rendition, whatever the height.
        return match &pick.name {
            Some(name) => Err(ClipError::NotFound(format!(
                "session {} has one rendition, not a rendition {name:?}",
                first.media_id
            ))),
            None => Ok(vec![first]),
        };
    }
    let renditions: Vec<Rendition> = all.iter().filter_map(|i| i.rendition.clone()).collect();
    let chosen = ladder::pick(&renditions, pick.name.as_deref(), pick.height)
        .map_err(ClipError::NotFound)?;
    let of = |name: &str| {
        all.iter()
            .find(|i| i.rendition.as_ref().is_some_and(|r| r.name == name))
    };
    let mut out: Vec<&SessionIndex> = of(&chosen.name).into_iter().collect();
    if audio && chosen.kind == TrackKind::Video {
        let track = renditions.iter().find(|r| r.kind == TrackKind::Audio);
        out.extend(track.and_then(|a| of(&a.name)));
    }
    Ok(out)
}

impl ClipService {
    pub fn new(stream_dir: PathBuf, live: Arc<LiveIndex>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            stream_dir,
            live,
            pool: Pool::new(limits.workers, limits.queue),
            permits: Permits::new(limits.workers, limits.queue),
            limits,
            next_id: AtomicU64::new(1),
            stills: StillCache::default(),
            storyboards: Mutex::new(VecDeque::new()),
            blocking: AtomicUsize::new(0),
            writer: Mutex::new(None),
            profiles: Mutex::new(crate::frames::export::builtin()),
            export_pool: Pool::new(1, 8),
            exports: Mutex::new(VecDeque::new()),
            export_notify: Mutex::new(None),
        })
    }

    /// Who hears of each finished HTTP export (its state as JSON, with
    /// `"event": "export"`).
    pub fn set_export_notify(&self, notify: Option<ExportNotify>) {
        *self.export_notify.lock().unwrap() = notify;
    }

    /// The export profiles (`export-profiles`).
    pub fn set_profiles(&self, profiles: Vec<crate::frames::export::Profile>) {
        *self.profiles.lock().unwrap() = profiles;
    }

    /// The export profiles.
    pub fn profiles(&self) -> Vec<crate::frames::export::Profile> {
        self.profiles.lock().unwrap().clone()
    }

    fn profile(&self, name: &str) -> Result<crate::frames::export::Profile, ClipError> {
        let all = self.profiles.lock().unwrap();
        all.iter().find(|p| p.name == name).cloned().ok_or_else(|| {
            ClipError::BadRequest(format!(
                "no export profile {name:?} (profiles: {})",
                all.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Cuts the clip `req` asks for and re-encodes it with its profile to
    /// `location`; `progress` hears the share done. Runs on the caller's
    /// thread (an export worker).
    fn export(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
        location: &Path,
        progress: &dyn Fn(f64),
    ) -> Result<(PathBuf, ClipInfo, u64), ClipError> {
        let name = req.profile.as_deref().unwrap_or_default();
        let profile = self.profile(name)?;
        let (clip, info) = self.make_clip(media_id, req)?;
        if info.duration() > profile.max_duration.as_nanos() as u64 {
            return Err(ClipError::BadRequest(format!(
                "the clip is {:.3} s long; profile {name} exports at most {} s",
                info.duration() as f64 / 1e9,
                profile.max_duration.as_secs()
            )));
        }
        let video = clip
            .tracks
            .iter()
            .find(|t| t.config.kind == TrackKind::Video)
            .map(|t| (t.config.width, t.config.height))
            .ok_or_else(|| ClipError::BadRequest("the clip has no video to export".into()))?;
        if let Some(parent) = location.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                ClipError::Storage(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let with = |suffix: &str| {
            let mut p = location.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let (src, part) = (with(".src.mp4"), with(".part"));
        struct Remove(Vec<PathBuf>);
        impl Drop for Remove {
            fn drop(&mut self) {
                for p in &self.0 {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        let _cleanup = Remove(vec![src.clone(), part.clone()]);
        clip.write_file(&src, false)
            .map_err(|e| ClipError::Storage(format!("cannot write {}: {e}", src.display())))?;
        let made = crate::frames::export::export(
            &src,
            &part,
            &profile,
            (video, (1, 1)),
            req.crop_x.map(|x| f64::from(x) / 1000.0),
            Duration::from_nanos(info.duration()),
            progress,
        )
        .map_err(|e| ClipError::Storage(format!("the export to profile {name} failed: {e}")))?;
        std::fs::rename(&part, location)
            .map_err(|e| ClipError::Storage(format!("cannot write {}: {e}", location.display())))?;
        Ok((location.to_path_buf(), info, made.bytes))
    }

    /// Queues an export asked over HTTP: its job, to follow with
    /// [`Self::export_job`]. The file goes to
    /// `{location}/exports/{stream-id}/{n}-{profile}.mp4`.
    pub fn start_export(
        self: &Arc<Self>,
        media_id: Option<String>,
        req: ClipRequest,
    ) -> Result<u64, ClipError> {
        let name = req.profile.clone().ok_or_else(|| {
            ClipError::BadRequest("missing profile, e.g. profile=vertical".into())
        })?;
        self.profile(&name)?;
        let id = self.next_id();
        let stream = self
            .stream_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let location = self
            .stream_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join("exports")
            .join(stream)
            .join(format!("{id}-{name}.mp4"));
        let job = Arc::new(Mutex::new(ExportJob {
            id,
            profile: name,
            state: ExportState::Queued,
        }));
        let (this, j) = (self.clone(), job.clone());
        self.export_pool.submit(Box::new(move || {
            j.lock().unwrap().state = ExportState::Running(0.0);
            let progress = |share: f64| j.lock().unwrap().state = ExportState::Running(share);
            let result = this.export(media_id.as_deref(), &req, &location, &progress);
            let finished = {
                let mut job = j.lock().unwrap();
                job.state = match result {
                    Ok((path, info, bytes)) => ExportState::Done { path, bytes, info },
                    Err(e) => ExportState::Failed(e),
                };
                job.to_json()
            };
            let notify = this.export_notify.lock().unwrap().clone();
            if let Some(notify) = notify {
                let mut v = finished;
                v["event"] = "export".into();
                v["success"] = (v["state"] == "done").into();
                notify(v);
            }
        }))?;
        let mut all = self.exports.lock().unwrap();
        all.push_back(job);
        while all.len() > EXPORTS_KEPT {
            if let Some(old) = all.pop_front()
                && let ExportState::Done { path, .. } = &old.lock().unwrap().state
            {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(id)
    }

    /// Export `id` as it stands.
    pub fn export_job(&self, id: u64) -> Option<ExportJob> {
        self.exports
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.lock().unwrap().id == id)
            .map(|j| j.lock().unwrap().clone())
    }

    /// Where markers of the live session go: the writer thread's queue
    /// while a session is recorded, `None` after.
    pub fn set_writer(&self, writer: Option<crate::media::Sender<Command>>) {
        *self.writer.lock().unwrap() = writer;
    }

    /// Adds the marker `input` asks for to the live session: placed at the
    /// live edge (or `ago` before it, or at `time`), which must lie in what
    /// the session recorded or at most a minute past it; stored by the
    /// writer thread (waits for it, at most 10 s). Returns the session and
    /// the marker.
    pub fn mark(&self, input: &MarkInput, source: Source) -> Result<(String, Marker), ClipError> {
        let when = input.when()?;
        let writer = self.writer.lock().unwrap().clone();
        let placed = self.live.with(|index| -> Result<(String, u64), ClipError> {
            let edge = index.end();
            let start = match when {
                When::Now => i128::from(edge),
                When::Ago(ago) => i128::from(edge) - i128::from(ago),
                When::At(p) => clip::point(index, p, "time")?,
            };
            let begin = i128::from(index.begin());
            if start < begin {
                return Err(ClipError::OutOfRange(format!(
                    "the marker starts at {:.3} s, before what session {} holds ({:.3} s to {:.3} s)",
                    start as f64 / 1e9,
                    index.media_id,
                    begin as f64 / 1e9,
                    edge as f64 / 1e9
                )));
            }
            if start > i128::from(edge) + i128::from(MARK_AHEAD) {
                return Err(ClipError::OutOfRange(format!(
                    "the marker starts at {:.3} s, more than {} s past the live edge of session {} ({:.3} s)",
                    start as f64 / 1e9,
                    MARK_AHEAD / NS,
                    index.media_id,
                    edge as f64 / 1e9
                )));
            }
            Ok((index.media_id.clone(), start as u64))
        });
        let (Some(placed), Some(writer)) = (placed, writer) else {
            return Err(ClipError::NotFound(format!(
                "stream {} is not recording: markers are added to the session being recorded",
                self.stream_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )));
        };
        let (media_id, start) = placed?;
        let n = self.next_id();
        let marker = input.to_marker(start, source, || {
            format!("marker-{}-{n}", start / 1_000_000)
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let cmd = Command::Mark {
            marker,
            splice: None,
            reply: Some(tx),
        };
        if writer.send(cmd).is_err() {
            return Err(ClipError::NotFound(
                "the recording stopped before the marker was stored".into(),
            ));
        }
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(result) => result.map(|m| (media_id, m)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ClipError::Storage(
                "the recording stopped writing (an error or the end) before the marker was stored"
                    .into(),
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(ClipError::Busy(
                "the recording's writer did not store the marker within 10 s (disk too slow)"
                    .into(),
            )),
        }
    }

    /// The markers of session `media_id` (`None`: the live or newest one):
    /// its media id, whether it is live, and the markers.
    pub fn markers(
        &self,
        media_id: Option<&str>,
    ) -> Result<(String, bool, Arc<Vec<Marker>>), ClipError> {
        match self.find(media_id)? {
            // A stored session another process records (no ENDLIST) is
            // live too.
            Found::Stored(all) => {
                Ok((all[0].media_id.clone(), all[0].live, all[0].markers.clone()))
            }
            Found::Live(id) => {
                self.with_live(&id, |all| (id.clone(), all[0].live, all[0].markers.clone()))
            }
        }
    }

    pub fn stream_dir(&self) -> &Path {
        &self.stream_dir
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The live session's media id, if one is being recorded.
    pub fn live_media_id(&self) -> Option<String> {
        self.live.with(|s| s.media_id.clone())
    }

    fn find(&self, media_id: Option<&str>) -> Result<Found, ClipError> {
        let live = self.live.with(|s| (s.media_id.clone(), s.live));
        let id = match media_id.filter(|m| !m.is_empty()) {
            Some(id) => id.to_string(),
            None => match &live {
                Some((id, _)) => id.clone(),
                None => SessionsFile::load(&self.stream_dir, "")
                    .sessions
                    .iter()
                    .rev()
                    .find(|r| r.state != State::Deleted)
                    .map(|r| r.media_id.clone())
                    .ok_or_else(|| {
                        ClipError::NotFound(format!(
                            "stream {} has no recording",
                            self.stream_dir.display()
                        ))
                    })?,
            },
        };
        if !is_safe_id(&id) {
            return Err(ClipError::NotFound(format!("no session {id:?}")));
        }
        if live.as_ref().is_some_and(|(l, _)| *l == id) {
            return Ok(Found::Live(id));
        }
        let dir = self.stream_dir.join(&id);
        if let Some(all) = SessionIndex::load_session(&dir, &id) {
            return Ok(Found::Stored(all));
        }
        let record = SessionsFile::load(&self.stream_dir, "")
            .sessions
            .into_iter()
            .find(|r| r.media_id == id);
        match record {
            Some(r) if r.state == State::Deleted => Err(ClipError::Gone(format!(
                "session {id} was deleted (retention)"
            ))),
            _ => Err(ClipError::NotFound(format!("no session {id:?}"))),
        }
    }

    /// Whether `id` names a session of this stream (stored, live, or
    /// deleted with a tombstone left).
    pub fn knows(&self, id: &str) -> bool {
        let dir = self.stream_dir.join(id);
        is_safe_id(id)
            && (self.live_media_id().as_deref() == Some(id)
                || dir.join(super::playlist::REPLAY).exists()
                || dir.join(ladder::MASTER).exists()
                || SessionsFile::load(&self.stream_dir, "").get(id).is_some())
    }

    /// The session a request names (NULL/empty: the live one, else the
    /// newest): its media id, directory, and whether it is being recorded.
    pub fn session_dir(
        &self,
        media_id: Option<&str>,
    ) -> Result<(String, PathBuf, bool), ClipError> {
        match self.find(media_id)? {
            Found::Live(id) => {
                let dir = self.stream_dir.join(&id);
                // After EOS the session stays here, ended, until the stop.
                let live = self.live.with(|s| s.live).unwrap_or(false);
                Ok((id, dir, live))
            }
            Found::Stored(all) => {
                let id = all[0].media_id.clone();
                let dir = self.stream_dir.join(&id);
                Ok((id, dir, false))
            }
        }
    }

    /// A ladder session's multivariant playlist as stored (its URIs name
    /// `{rendition}/replay.m3u8`), `None` for the single layout; `NotYet`
    /// before a ladder's first segments.
    pub fn master(&self, media_id: Option<&str>) -> Result<Option<(String, String)>, ClipError> {
        let (id, dir, _) = self.session_dir(media_id)?;
        let ladder = match self.find(Some(&id))? {
            Found::Live(_) => self.live.with(|s| s.rendition.is_some()).unwrap_or(false),
            Found::Stored(all) => all[0].rendition.is_some(),
        };
        if !ladder {
            return Ok(None);
        }
        match std::fs::read_to_string(dir.join(ladder::MASTER)) {
            Ok(text) => Ok(Some((id, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClipError::NotYet(format!(
                "session {id} has no complete segment yet"
            ))),
            Err(e) => Err(ClipError::Storage(e.to_string())),
        }
    }

    /// The directory name of the rendition `which` picks in session
    /// `media_id` (`None` for the single layout).
    pub fn pick_rendition(
        &self,
        media_id: Option<&str>,
        which: &Pick,
    ) -> Result<Option<String>, ClipError> {
        let name = |all: &[SessionIndex]| {
            pick(all, which, false).map(|p| p[0].rendition.as_ref().map(|r| r.name.clone()))
        };
        match self.find(media_id)? {
            Found::Stored(all) => name(&all),
            Found::Live(id) => self.with_live(&id, name)?,
        }
    }

    /// The low-latency live playlist of the live session's rendition
    /// `which`, from recording time `from` (a preview's first segment) or
    /// of the live window, once it holds segment `msn` (and its part
    /// `part`) when asked:
    /// `None` when the session is not live or was recorded without parts.
    /// Waits at most three target durations, then `NotYet`. Returns the
    /// media id, the rendition's directory name and the playlist (stored
    /// file names), and the other renditions' last (msn, part).
    pub fn low_latency(
        &self,
        which: &Pick,
        block: Option<(u64, Option<u64>)>,
        from: Option<u64>,
    ) -> Result<Option<LowLatency>, ClipError> {
        let Some((id, target, part_target)) = self
            .live
            .with(|s| (s.media_id.clone(), s.target_duration, s.part_target))
            .filter(|&(_, _, p)| p > 0)
        else {
            return Ok(None);
        };
        let name = |all: &[SessionIndex]| -> Result<usize, ClipError> {
            let chosen = pick(all, which, false)?[0];
            Ok(all
                .iter()
                .position(|i| std::ptr::eq(i, chosen))
                .unwrap_or(0))
        };
        let at = self.live.with_all(name).transpose()?.unwrap_or(0);
        if let Some((msn, part)) = block {
            let newest = self
                .live
                .with_all(|all| all.get(at).and_then(super::lowlatency::last_part))
                .flatten();
            if newest.is_some_and(|(last, _)| msn > last + 2) {
                return Err(ClipError::BadRequest(format!(
                    "_HLS_msn={msn} is more than two segments past the newest ({})",
                    newest.map_or(0, |n| n.0)
                )));
            }
            let timeout = Duration::from_secs(3 * u64::from(target.max(1)));
            let ready = |all: &[SessionIndex]| {
                all.get(at)
                    .is_some_and(|i| super::lowlatency::has(i, msn, part))
            };
            let _waiting = self.blocking_slot()?;
            if !self.live.wait_for(&id, timeout, ready) {
                let still = self.live.with(|s| s.media_id == id && s.live);
                if still == Some(true) {
                    return Err(ClipError::NotYet(format!(
                        "segment {msn} part {part:?} was not recorded within {} s",
                        timeout.as_secs()
                    )));
                }
            }
        }
        let out = self.live.with_all(|all| {
            let whole = &all[at.min(all.len() - 1)];
            // The live window only (`playlist-length` segments), copied.
            let window = whole.live_window;
            // (`slice` keeps what ends within a millisecond of its start.)
            let from = match (from, whole.segments.len()) {
                (Some(from), _) => from + 2_000_000,
                (None, n) if window > 0 && n > window => {
                    whole.segments[n - window].segment.start + 2_000_000
                }
                _ => 0,
            };
            let index = &whole.slice(from, u64::MAX);
            let reports = all
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != at)
                .filter_map(|(_, other)| {
                    let (msn, part) = super::lowlatency::last_part(other)?;
                    Some((other.rendition.as_ref()?.name.clone(), msn, part))
                })
                .collect();
            LowLatency {
                media_id: index.media_id.clone(),
                rendition: index.rendition.as_ref().map(|r| r.name.clone()),
                index: index.clone(),
                reports,
                part_target,
            }
        });
        Ok(out)
    }

    /// Waits until the live session's segment file `path` (of session
    /// `media_id`; `{rendition}/{file}` in a ladder) holds more than
    /// `offset` bytes, for a player's preload hint of the next part: at most
    /// three part durations past the part expected, while the segment is
    /// being written. Returns whether it grew.
    pub fn wait_grown(&self, media_id: &str, path: &str, offset: u64) -> bool {
        let (rendition, file) = match path.split_once('/') {
            Some((r, f)) => (Some(r), f),
            None => (None, path),
        };
        let writing = |i: &SessionIndex| {
            i.rendition.as_ref().map(|r| r.name.as_str()) == rendition
                && i.open.as_ref().is_some_and(|o| o.segment.uri == file)
        };
        let timeout = self
            .live
            .with_all(|all| {
                let open = all.iter().any(|i| {
                    writing(i) || {
                        // The next segment, not opened yet.
                        i.rendition.as_ref().map(|r| r.name.as_str()) == rendition
                            && i.open.is_none()
                            && i.segments.last().is_some_and(|s| {
                                format!("segment-{:05}.m4s", s.segment.sequence + 1) == file
                            })
                    }
                });
                (open && all[0].media_id == media_id && all[0].part_target > 0)
                    .then(|| Duration::from_nanos(4 * all[0].part_target))
            })
            .flatten();
        let Some(timeout) = timeout else {
            return false;
        };
        let Ok(_waiting) = self.blocking_slot() else {
            return false;
        };
        self.live.wait_for(media_id, timeout, |all| {
            all.iter()
                .any(|i| writing(i) && i.open.as_ref().is_some_and(|o| o.segment.bytes > offset))
        })
    }

    /// One of the stream's [`MAX_BLOCKING`] low-latency requests that may
    /// wait at once (blocking reloads and preload hints); `Busy` past them.
    fn blocking_slot(&self) -> Result<impl Drop + '_, ClipError> {
        struct Slot<'a>(&'a AtomicUsize);
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.blocking.fetch_add(1, Ordering::SeqCst) >= MAX_BLOCKING {
            self.blocking.fetch_sub(1, Ordering::SeqCst);
            return Err(ClipError::Busy(format!(
                "{MAX_BLOCKING} low-latency requests are waiting already; try again shortly"
            )));
        }
        Ok(Slot(&self.blocking))
    }

    /// How far past the live edge a request may end and still wait for it,
    /// and for how long it waits at most.
    fn wait_allowance(index: &SessionIndex) -> (u64, Duration) {
        let t = u64::from(index.target_duration.max(1)) * NS;
        (t + 5 * NS, Duration::from_nanos(2 * t + 5 * NS))
    }

    /// Places `req` on its session and returns the part of the session it
    /// needs, waiting for the live edge if the range reaches a little past
    /// it: the rendition `req` picks (with `audio`, and its audio in a
    /// ladder).
    pub fn resolve(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
        audio: bool,
    ) -> Result<(Vec<SessionIndex>, Range), ClipError> {
        self.resolve_with(media_id, req, audio, 0)
    }

    /// [`Self::resolve`], with `more` ns of the live session past the range
    /// in the part returned.
    fn resolve_with(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
        audio: bool,
        more: u64,
    ) -> Result<(Vec<SessionIndex>, Range), ClipError> {
        let max = self.limits.max_clip;
        let picked = |all: &[SessionIndex]| -> Result<Vec<SessionIndex>, ClipError> {
            Ok(pick(all, &req.rendition, audio)?
                .into_iter()
                .cloned()
                .collect())
        };
        match self.find(media_id)? {
            // A stored session is not live: `place` never asks it to wait.
            Found::Stored(all) => {
                let all = picked(&all)?;
                match clip::place(req, &all[0], max, 0)? {
                    Placement::Ready(range) | Placement::Wait(range) => Ok((all, range)),
                }
            }
            Found::Live(id) => {
                // The renditions are written together: the leading one's
                // edge is every one's.
                let placed = self.with_live(&id, |all| {
                    let (allow, timeout) = Self::wait_allowance(&all[0]);
                    clip::place(req, &all[0], max, allow).map(|p| (p, timeout))
                })?;
                let range = match placed? {
                    (Placement::Ready(range), _) => range,
                    (Placement::Wait(range), timeout) => {
                        self.live.wait_until(&id, range.end, timeout);
                        match self.with_live(&id, |all| clip::place(req, &all[0], max, 0))? {
                            Ok(Placement::Ready(range)) => range,
                            _ => {
                                return Err(ClipError::NotYet(format!(
                                    "the clip ends at {:.3} s, which was not recorded within {:.1} s",
                                    range.end as f64 / 1e9,
                                    timeout.as_secs_f64()
                                )));
                            }
                        }
                    }
                };
                let all =
                    self.with_live(&id, |all| -> Result<Vec<SessionIndex>, ClipError> {
                        Ok(pick(all, &req.rendition, audio)?
                            .into_iter()
                            .map(|s| s.slice(range.start, range.end.saturating_add(more)))
                            .collect())
                    })??;
                Ok((all, range))
            }
        }
    }

    /// Runs `f` on the live session `id`'s renditions; if it stopped being
    /// the live one, on its stored copy.
    fn with_live<R>(&self, id: &str, f: impl Fn(&[SessionIndex]) -> R) -> Result<R, ClipError> {
        if let Some(r) = self
            .live
            .with_all(|all| (all[0].media_id == id).then(|| f(all)))
            .flatten()
        {
            return Ok(r);
        }
        match self.find(Some(id))? {
            Found::Stored(all) => Ok(f(&all)),
            Found::Live(_) => Err(ClipError::NotFound(format!("no session {id:?}"))),
        }
    }

    /// The last `duration` of a session (of the rendition `which` picks) as
    /// a playlist (URIs prefixed with `base`).
    pub fn preview(
        &self,
        media_id: Option<&str>,
        duration: u64,
        which: &Pick,
    ) -> Result<Preview, ClipError> {
        let max = self.limits.max_preview;
        let one = |all: &[SessionIndex], from: Option<u64>| -> Result<Preview, ClipError> {
            let index = pick(all, which, false)?[0];
            match from {
                Some(from) => clip::preview(&index.slice(from, u64::MAX), duration, max),
                None => clip::preview(index, duration, max),
            }
        };
        match self.find(media_id)? {
            Found::Stored(all) => one(&all, None),
            Found::Live(id) => self.with_live(&id, |all| {
                let from = all[0].segments_end().saturating_sub(duration);
                one(all, Some(from))
            })?,
        }
    }

    /// A clip manifest (byte ranges of the stored fragments) of the
    /// rendition `req` picks.
    pub fn clip_manifest(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
    ) -> Result<(String, SessionIndex, Range), ClipError> {
        let (mut all, range) = self.resolve(media_id, req, false)?;
        let index = all.swap_remove(0);
        let text = clip::clip_manifest(&index, range, req.accuracy)?;
        Ok((text, index, range))
    }

    /// Runs `f`, which cuts a clip, under the stream's clip permits: signal
    /// and HTTP clips together never cut more than `max-concurrent-clips`
    /// at once. Blocks while waiting; `Busy` when too many wait already.
    pub fn with_permit<T>(&self, f: impl FnOnce() -> Result<T, ClipError>) -> Result<T, ClipError> {
        self.permits.run(f)
    }

    /// Cuts an MP4 clip (waiting for the live edge if needed); the caller
    /// writes it (to a file, or streams it: its size is known up front).
    pub fn make_clip(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
    ) -> Result<(Mp4Clip, ClipInfo), ClipError> {
        let (all, range) = self.resolve(media_id, req, true)?;
        clip::clip_mp4(&all, range, req.accuracy)
    }

    /// What decodes the still `req` asks for (a 1 ns clip request at its
    /// time): placed like a clip (waiting for the live edge if needed, and
    /// refused as a clip would be), then the samples from the keyframe at
    /// or before the time to the frame presented at it. Reads the stored
    /// fragments; the decoding is the caller's, under [`Self::with_permit`].
    pub fn still_frames(
        &self,
        media_id: Option<&str>,
        req: &ClipRequest,
    ) -> Result<StillFrames, ClipError> {
        // The next fragment may hold leading pictures presented at the time:
        // a live session's part reaches a minute past it.
        let (all, range) = self.resolve_with(media_id, req, false, 60 * NS)?;
        super::still::select(&all[0], range.start)
    }

    /// The whole recorded index of session `media_id` (`None`: the live or
    /// newest one); a live session's as recorded so far.
    pub fn session_index(&self, media_id: Option<&str>) -> Result<SessionIndex, ClipError> {
        let highest =
            |all: &[SessionIndex]| pick(all, &Pick::default(), false).map(|p| p[0].clone());
        match self.find(media_id)? {
            Found::Stored(all) => highest(&all),
            Found::Live(id) => {
                self.with_live(&id, |all| highest(all).map(|i| i.slice(0, u64::MAX)))?
            }
        }
    }

    /// The cached storyboard sprite of session `media_id` recorded up to
    /// `end` (ns).
    pub fn storyboard(&self, media_id: &str, end: u64) -> Option<Bytes> {
        let q = self.storyboards.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .find(|(m, e, _)| m == media_id && *e == end)
            .map(|(_, _, b)| b.clone())
    }

    /// Keeps a storyboard sprite (the last few, one per session).
    pub fn put_storyboard(&self, media_id: &str, end: u64, sprite: Bytes) {
        let mut q = self.storyboards.lock().unwrap_or_else(|e| e.into_inner());
        q.retain(|(m, _, _)| m != media_id);
        q.push_front((media_id.to_string(), end, sprite));
        q.truncate(STORYBOARDS);
    }

    /// The stream's cache of encoded stills.
    pub fn stills(&self) -> &StillCache {
        &self.stills
    }

    /// A new request id (ids start at 1).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Makes an MP4 clip to `location` on a worker thread and calls `done`
    /// there. Returns the request id, or `Busy` when the queue is full.
    pub fn clip_to_file(
        self: &Arc<Self>,
        id: u64,
        media_id: Option<String>,
        req: ClipRequest,
        location: PathBuf,
        done: impl FnOnce(ClipDone) + Send + 'static,
    ) -> Result<u64, ClipError> {
        let this = self.clone();
        if req.profile.is_some() {
            // Takes seconds: on the export worker, not a clip permit.
            self.profile(req.profile.as_deref().unwrap_or_default())?;
            self.export_pool.submit(Box::new(move || {
                let result = this.export(media_id.as_deref(), &req, &location, &|_| {});
                done(ClipDone { id, result });
            }))?;
            return Ok(id);
        }
        self.pool.submit(Box::new(move || {
            let result = this.with_permit(|| {
                this.make_clip(media_id.as_deref(), &req)
                    .and_then(|(clip, info)| {
                        if let Some(parent) =
                            location.parent().filter(|p| !p.as_os_str().is_empty())
                        {
                            std::fs::create_dir_all(parent).map_err(|e| {
                                ClipError::Storage(format!(
                                    "cannot create {}: {e}",
                                    parent.display()
                                ))
                            })?;
                        }
                        let stats = clip.write_file(&location, false).map_err(|e| {
                            ClipError::Storage(format!("cannot write {}: {e}", location.display()))
                        })?;
                        Ok((location, info, stats.bytes))
                    })
            });
            done(ClipDone { id, result });
        }))?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever path takes them, at most `workers` cut at once, `queue`
    /// more wait, and the next is refused at once.
    #[test]
    fn permits_bound_every_path_together() {
        use std::sync::Barrier;
        let permits = Arc::new(Permits::new(2, 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Barrier::new(3));
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (p, inside, most, release) = (
                permits.clone(),
                inside.clone(),
                most.clone(),
                release.clone(),
            );
            threads.push(std::thread::spawn(move || {
                p.run(|| {
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    release.wait();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
            }));
        }
        while inside.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        // A third waits for a permit...
        let (p, inside3, most3) = (permits.clone(), inside.clone(), most.clone());
        let third = std::thread::spawn(move || {
            p.run(|| {
                let n = inside3.fetch_add(1, Ordering::SeqCst) + 1;
                most3.fetch_max(n, Ordering::SeqCst);
                inside3.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        });
        while permits.state.lock().unwrap().1 < 1 {
            std::thread::yield_now();
        }
        // ...and a fourth is refused without waiting.
        assert!(matches!(permits.run(|| Ok(())), Err(ClipError::Busy(_))));
        release.wait();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        third.join().unwrap().unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // An error releases its permit too.
        let failed: Result<(), ClipError> = permits.run(|| Err(ClipError::Storage("disk".into())));
        assert!(failed.is_err());
        assert_eq!(*permits.state.lock().unwrap(), (0, 0));
    }
}
