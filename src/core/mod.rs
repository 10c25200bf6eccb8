// SPDX-License-Identifier: MPL-2.0
//! The pure core: no pads, no caps, no GStreamer. Unit-tested without pipelines.

pub mod atomic;
pub mod motion;
pub mod nal;
pub mod pattern;
pub mod periodic;
pub mod sample;
pub mod thumbs;
pub mod timeline;
pub mod timespec;

pub use sample::{Sample, TrackKind};
pub use timeline::Timeline;
