// SPDX-License-Identifier: MPL-2.0
//! The pure core: no pads, no caps, no GStreamer. Unit-tested without pipelines.

pub mod atomic;
pub mod motion;
pub mod nal;
pub mod pattern;
pub mod periodic;
pub mod query;
pub mod sample;
pub mod scte35;
pub mod thumbs;
pub mod timeline;
pub mod timespec;

pub use sample::{Sample, TrackKind};

/// Nanoseconds per second: the unit of every time in liveclip.
pub const NS: u64 = 1_000_000_000;
pub use timeline::Timeline;
