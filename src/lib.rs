// SPDX-License-Identifier: MPL-2.0
//! liveclip: instant clipping for live GStreamer pipelines.
//!
//! Four elements: `hlsclipsink` (CMAF HLS recording with live and replay
//! playlists, clip manifests and MP4 clips of any recorded range),
//! `periodicclipper` (an MP4 of the last N seconds every N seconds, and on
//! demand), `motionclipenc` (short muted motion clips) and `thumbnailer`
//! (still images and storyboards).
//!
//! The crate is layered; each layer uses only those below it:
//! - [`core`]: pure Rust, no GStreamer: samples and random access from the
//!   bitstream ([`core::nal`]), timelines, clip selection
//!   ([`core::periodic::Cutter`]), time and duration parsing, file patterns,
//!   atomic writes, SCTE-35 splice information ([`core::scte35`]).
//! - [`mp4`]: ISO-BMFF on the `mp4-atom` crate: codec configuration from
//!   caps, progressive (faststart) MP4 clips, CMAF init segments and
//!   fragments, reading fragments back ([`mp4::scan`]), time arithmetic
//!   ([`mp4::time`]).
//! - [`hls`]: recordings: the pure recording planner ([`hls::planner`]),
//!   the [`hls::recorder::Recorder`] (segments, playlists, sessions,
//!   recovery, retention), the byte-range index of a session
//!   ([`hls::index`]) and clips cut from it ([`hls::clip`],
//!   [`hls::service`]).
//! - [`http`]: the HTTP API on axum (one listener per address, shared by the
//!   elements of a process) and webhooks.
//! - [`media`] and [`frames`]: GStreamer plumbing shared by the elements:
//!   request pads, buffers to samples and the writer thread of the two
//!   sinks, SCTE-35 cues from tsdemux's events ([`media::scte35`]); the
//!   frame worker of thumbnailer and motionclipenc (pads, work queue,
//!   worker thread, numbered files, private pipelines).
//! - the elements (`hlsclipsink`, `periodicclipper`, `motionclipenc`,
//!   `thumbnailer`): GStreamer glue from pads, events, properties and
//!   signals to the layers above.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

use gst::glib;

pub mod core;
pub mod frames;
pub mod hls;
pub mod hlsclipsink;
pub mod http;
pub mod media;
pub mod motionclipenc;
pub mod mp4;
pub mod periodicclipper;
pub mod thumbnailer;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    hlsclipsink::register(plugin)?;
    motionclipenc::register(plugin)?;
    periodicclipper::register(plugin)?;
    thumbnailer::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    liveclip,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
