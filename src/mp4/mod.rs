// SPDX-License-Identifier: MPL-2.0
//! ISO-BMFF through the `mp4-atom` crate.

pub mod boxes;
pub mod codec;
pub mod fragmented;
pub mod progressive;
pub mod scan;
#[cfg(test)]
pub(crate) mod testing;
pub mod time;

pub use codec::{CodecConfig, CodecError};
pub use progressive::{ClipTrack, ExactCut, Mp4Clip, Reencoded, WriteStats};
