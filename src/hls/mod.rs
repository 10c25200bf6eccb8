// SPDX-License-Identifier: MPL-2.0
//! HLS: playlists, session storage, recovery and retention.

pub mod clip;
pub mod exact;
pub mod index;
pub mod ladder;
pub mod lowlatency;
pub mod markers;
pub mod planner;
pub mod playlist;
pub mod recorder;
pub mod service;
pub mod sessions;
pub mod still;
