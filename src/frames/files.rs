// SPDX-License-Identifier: MPL-2.0
//! The files every output goes to: numbered files of a `location` pattern
//! (the newest `max-files` kept) and a `latest-location` replaced each
//! time, written atomically.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::FrameElement;
use crate::core::atomic::write_atomic;
use crate::core::pattern::format_index;

/// The `location`, `start-index`, `max-files` and `latest-location`
/// properties.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    pub location: Option<String>,
    pub start_index: u32,
    pub max_files: u32,
    pub latest_location: Option<String>,
}

impl FileSettings {
    /// Their param specs: `noun` names one output ("thumbnail"), `example`
    /// is a location pattern, `latest` the blurb of `latest-location`.
    pub fn properties(noun: &str, example: &str, latest: &str) -> [glib::ParamSpec; 4] {
        [
            glib::ParamSpecString::builder("location")
                .nick("File location")
                .blurb(&format!(
                    "Write every {noun} to this pattern with one %d for the index (e.g. {example}); unset = no files"
                ))
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("start-index")
                .nick("Start index")
                .blurb(&format!("Index of the first {noun}"))
                .default_value(0)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-files")
                .nick("Max files")
                .blurb("Keep at most this many files of location, deleting the oldest (0 = keep all)")
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("latest-location")
                .nick("Latest location")
                .blurb(latest)
                .mutable_playing()
                .build(),
        ]
    }

    /// Sets property `name` if it is one of these (says whether it was); a
    /// location pattern that cannot be used is warned about.
    pub fn set<T: FrameElement>(&mut self, imp: &T, name: &str, value: &glib::Value) -> bool {
        match name {
            "location" => {
                let location = path_value(value);
                if let Some(l) = &location
                    && let Err(e) = format_index(l, 0)
                {
                    gst::warning!(T::cat(), imp = imp, "location: {e}");
                }
                self.location = location;
            }
            "start-index" => self.start_index = value.get().unwrap(),
            "max-files" => self.max_files = value.get().unwrap(),
            "latest-location" => self.latest_location = path_value(value),
            _ => return false,
        }
        true
    }

    /// The value of property `name` if it is one of these.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "location" => self.location.to_value(),
            "start-index" => self.start_index.to_value(),
            "max-files" => self.max_files.to_value(),
            "latest-location" => self.latest_location.to_value(),
            _ => return None,
        })
    }
}

/// A path property's value: unset or empty is `None`.
pub fn path_value(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .unwrap()
        .filter(|s| !s.is_empty())
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
    write_atomic(path, bytes, sync)
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
