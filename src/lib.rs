// SPDX-License-Identifier: MPL-2.0
//! liveclip: instant clipping for live GStreamer pipelines.
//!
//! The crate is split in three layers:
//! - [`core`]: pure Rust, no GStreamer: samples, timelines, time parsing.
//! - [`mp4`]: ISO-BMFF writing on the `mp4-atom` crate (codec configuration
//!   from caps, progressive faststart MP4).
//! - the elements (`periodicclipper`, ...), thin adapters from pads,
//!   events and properties to the two layers above.
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
