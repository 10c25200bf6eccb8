// SPDX-License-Identifier: MPL-2.0
//! `{location}/{stream-id}/sessions.json`: every session of a stream.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::atomic::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Live,
    Ended,
    /// Deleted by retention; kept so that requests for it answer "gone".
    Deleted,
}

/// One session (one run of the stream, or several runs joined within the
/// reconnect window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub media_id: String,
    pub start_utc: Option<DateTime<Utc>>,
    pub end_utc: Option<DateTime<Utc>>,
    /// Recording time, seconds.
    pub duration: f64,
    pub state: State,
    pub segments: u64,
    /// Bytes of every rendition.
    pub bytes: u64,
    /// A ladder's renditions (their directories); empty for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<String>,
}

/// Records of deleted sessions kept in sessions.json.
pub const MAX_TOMBSTONES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionsFile {
    pub stream_id: String,
    pub sessions: Vec<SessionRecord>,
}

impl SessionsFile {
    pub const NAME: &'static str = "sessions.json";

    /// Reads the file; a missing or unreadable one gives an empty list (the
    /// session directories are scanned again by recovery).
    pub fn load(stream_dir: &Path, stream_id: &str) -> Self {
        std::fs::read(stream_dir.join(Self::NAME))
            .ok()
            .and_then(|b| serde_json::from_slice::<SessionsFile>(&b).ok())
            .unwrap_or_else(|| SessionsFile {
                stream_id: stream_id.to_string(),
                sessions: Vec::new(),
            })
    }

    /// Replaces the file atomically and flushes it to disk.
    pub fn save(&self, stream_dir: &Path) -> io::Result<()> {
        self.save_with(stream_dir, true)
    }

    /// Replaces the file atomically; flushed to disk with `sync` (changes
    /// of state), not without (running totals, which recovery computes
    /// again from the segments).
    pub fn save_with(&self, stream_dir: &Path, sync: bool) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&stream_dir.join(Self::NAME), &json, sync)
    }

    pub fn get_mut(&mut self, media_id: &str) -> Option<&mut SessionRecord> {
        self.sessions.iter_mut().find(|s| s.media_id == media_id)
    }

    /// Keeps the newest [`MAX_TOMBSTONES`] records of deleted sessions.
    pub fn forget_old_tombstones(&mut self) {
        let deleted = self
            .sessions
            .iter()
            .filter(|r| r.state == State::Deleted)
            .count();
        let mut excess = deleted.saturating_sub(MAX_TOMBSTONES);
        self.sessions.retain(|r| {
            if excess > 0 && r.state == State::Deleted {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    pub fn get(&self, media_id: &str) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.media_id == media_id)
    }
}

/// A new media id: the UTC start to the millisecond, then 4 hex digits that
/// differ between ids made in the same millisecond. Sortable by start, safe
/// in a path and a URL: `20261123T120000123Z-3fa9`.
pub fn new_media_id(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        h.finish() & 0xffff
    )
}

/// Whether `id` has the shape of a media id (or any name safe to use as one
/// path component: letters, digits, `-`, `_`, `.`, not starting with `.`).
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_sort_by_time_and_are_safe() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T12:00:00.123Z")
            .unwrap()
            .to_utc();
        let a = new_media_id(t);
        let b = new_media_id(t + chrono::Duration::milliseconds(1));
        assert!(a.starts_with("20261123T120000123Z-"), "{a}");
        assert!(a < b);
        assert_ne!(new_media_id(t), new_media_id(t));
        assert!(is_safe_id(&a));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a%2f"] {
            assert!(!is_safe_id(bad), "{bad}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = SessionsFile::load(dir.path(), "cam");
        assert!(f.sessions.is_empty());
        f.sessions.push(SessionRecord {
            media_id: "x".into(),
            start_utc: Some(Utc::now()),
            end_utc: None,
            duration: 12.5,
            state: State::Live,
            segments: 2,
            bytes: 10,
            renditions: Vec::new(),
        });
        f.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("sessions.json")).unwrap();
        assert!(text.contains("\"state\": \"live\""), "{text}");
        assert_eq!(SessionsFile::load(dir.path(), "cam"), f);
    }
}
