// SPDX-License-Identifier: MPL-2.0
//! Storyboards of a recorded session (hlsclipsink's `/{id}/storyboard.vtt`,
//! `/{id}/storyboard.json` and `/{id}/storyboard.jpg`): a tile every
//! interval of the session, each the picture of the random-access point at
//! or before the tile's time, in a grid sprite of [`COLUMNS`] tiles a row.
//!
//! Only keyframes are decoded (one picture per tile, none of the frames
//! after it), by the thumbnailer's renderer; tiles in one GOP share it.
//! The layout (`plan`) needs no decoding, so the VTT and the JSON are
//! cheap; the sprite decodes under one of the stream's clip permits and is
//! kept per session and recorded end.

use std::time::Duration;

use bytes::Bytes;

use crate::core::NS;
use crate::core::thumbs::{Fit, Geometry, Storyboard};
use crate::frames::pipeline::{Rgbx, blit};
use crate::hls::clip::ClipError;
use crate::hls::index::SessionIndex;
use crate::hls::service::ClipService;
use crate::hls::still::select;
use crate::thumbnailer::ImageFormat;
use crate::thumbnailer::render::{Renderer, Spec, encode_jpeg};

/// Width of a tile, pixels (height by the picture's aspect).
pub const TILE_WIDTH: u32 = 256;
/// Tiles per row of the sprite (the thumbnailer's default).
pub const COLUMNS: u32 = 5;
/// Most tiles a session gets (the interval grows past it).
pub const MAX_TILES: u64 = 100;
/// Shortest interval between tiles, ns.
pub const MIN_INTERVAL: u64 = 2 * NS;
/// JPEG quality of the sprite.
const QUALITY: u32 = 85;
/// Longest one tile may take to decode.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The interval between tiles for a session of `duration` ns: whole
/// seconds, at least [`MIN_INTERVAL`], at most [`MAX_TILES`] tiles.
pub fn interval_for(duration: u64) -> u64 {
    let per_tile = duration.div_ceil(MAX_TILES);
    per_tile
        .div_ceil(NS)
        .max(1)
        .saturating_mul(NS)
        .max(MIN_INTERVAL)
}

/// A storyboard's layout: which session, over which recorded span, and the
/// tiles (starts in recording time, ns).
#[derive(Debug, Clone)]
pub struct Plan {
    pub media_id: String,
    pub live: bool,
    /// Recorded span, ns.
    pub begin: u64,
    pub end: u64,
    pub interval: u64,
    pub board: Storyboard,
    caps: gst::Caps,
    geometry: Geometry,
}

impl Plan {
    /// Recorded duration, ns.
    pub fn duration(&self) -> u64 {
        self.end - self.begin
    }

    /// The WebVTT file, cues pointing at `sprite`.
    pub fn vtt(&self, sprite: &str) -> String {
        let last = self.end as i64 - self.board.tiles.last().map_or(0, |t| t.start);
        self.board.vtt(sprite, last)
    }

    /// Mux's storyboard JSON, the sprite at `url`.
    pub fn json(&self, url: &str) -> serde_json::Value {
        let tiles: Vec<serde_json::Value> = self
            .board
            .tiles
            .iter()
            .map(|t| serde_json::json!({"start": t.start as f64 / 1e9, "x": t.x, "y": t.y}))
            .collect();
        serde_json::json!({
            "url": url,
            "tile_width": self.board.cell.0,
            "tile_height": self.board.cell.1,
            "duration": self.duration() as f64 / 1e9,
            "tiles": tiles,
        })
    }
}

fn storage(e: String) -> ClipError {
    ClipError::Storage(e)
}

/// The tile geometry for a track of `caps`.
fn geometry(caps: &gst::Caps) -> Result<Geometry, String> {
    crate::frames::still::geometry_for(caps, TILE_WIDTH, 0, Fit::Preserve)
}

/// The layout of `index`'s storyboard: a tile every interval from the
/// session's beginning to what is recorded. `NotYet` when nothing is.
pub fn plan(index: &SessionIndex) -> Result<Plan, ClipError> {
    let (begin, end) = (index.begin(), index.end());
    if end <= begin {
        return Err(ClipError::NotYet(format!(
            "nothing of session {} is recorded yet",
            index.media_id
        )));
    }
    let first = select(index, begin)?;
    let caps = first.config.video_caps().ok_or_else(|| {
        ClipError::Storage(format!(
            "session {} has no H.264/H.265 video",
            index.media_id
        ))
    })?;
    let geometry = geometry(&caps).map_err(storage)?;
    let interval = interval_for(end - begin);
    let mut board = Storyboard::new(COLUMNS, geometry.out);
    let count = (end - begin).div_ceil(interval);
    for i in 0..count {
        if board.add((begin + i * interval) as i64).is_none() {
            break;
        }
    }
    Ok(Plan {
        media_id: index.media_id.clone(),
        live: index.live,
        begin,
        end,
        interval,
        board,
        caps,
        geometry,
    })
}

/// The layout of session `media_id`'s storyboard (`None`: the stream's live
/// or newest session).
pub fn layout(service: &ClipService, media_id: Option<&str>) -> Result<Plan, ClipError> {
    plan(&service.session_index(media_id)?)
}

/// Decodes the keyframe at or before each tile's time and draws the sprite.
fn draw(index: &SessionIndex, plan: &Plan) -> Result<Vec<u8>, String> {
    let mut renderer = Renderer::new(Spec {
        caps: plan.caps.clone(),
        encoded: true,
        geometry: plan.geometry,
        format: ImageFormat::Jpeg,
        quality: QUALITY,
        tiles: true,
    })?;
    let (w, h) = plan.board.sprite_size();
    let mut canvas = Rgbx {
        width: w,
        height: h,
        data: vec![0; w as usize * h as usize * 4],
    };
    // The keyframe last decoded (its presentation time) and its picture.
    let mut last: Option<(i64, Rgbx)> = None;
    for tile in &plan.board.tiles {
        let frames = match select(index, tile.start as u64) {
            Ok(f) => f,
            // A gap in the recording (nothing stored at the tile's time):
            // the picture before it stays.
            Err(ClipError::OutOfRange(_)) => {
                if let Some((_, picture)) = &last {
                    blit(&mut canvas, picture, tile.x, tile.y, plan.board.cell);
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let key = &frames.samples[0];
        if last.as_ref().is_none_or(|(pts, _)| *pts != key.pts) {
            let rendered = renderer.render(gst::Buffer::from_slice(key.data.clone()), TIMEOUT)?;
            let picture = rendered
                .tile
                .ok_or("the keyframe did not decode (no picture)")?;
            last = Some((key.pts, picture));
        }
        if let Some((_, picture)) = &last {
            blit(&mut canvas, picture, tile.x, tile.y, plan.board.cell);
        }
    }
    encode_jpeg(&canvas, QUALITY, TIMEOUT)
}

/// The layout and sprite of session `media_id`'s storyboard: the sprite
/// from the stream's cache, or drawn under one of its clip permits (`Busy`
/// when too many wait).
pub fn sprite(service: &ClipService, media_id: Option<&str>) -> Result<(Plan, Bytes), ClipError> {
    let index = service.session_index(media_id)?;
    let plan = plan(&index)?;
    if let Some(jpeg) = service.storyboard(&plan.media_id, plan.end) {
        return Ok((plan, jpeg));
    }
    let jpeg = service.with_permit(|| {
        draw(&index, &plan).map(Bytes::from).map_err(|e| {
            ClipError::Storage(format!(
                "the storyboard of session {} could not be drawn: {e}",
                plan.media_id
            ))
        })
    })?;
    service.put_storyboard(&plan.media_id, plan.end, jpeg.clone());
    Ok((plan, jpeg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_whole_seconds_at_least_two_at_most_a_hundred_tiles() {
        assert_eq!(interval_for(NS), 2 * NS);
        assert_eq!(interval_for(20 * NS), 2 * NS);
        assert_eq!(interval_for(200 * NS), 2 * NS);
        assert_eq!(interval_for(201 * NS), 3 * NS);
        assert_eq!(interval_for(3600 * NS), 36 * NS);
        assert_eq!(interval_for(3601 * NS), 37 * NS);
        for d in [NS, 20 * NS, 201 * NS, 3601 * NS, 86_400 * NS] {
            assert!(d.div_ceil(interval_for(d)) <= MAX_TILES);
        }
    }

    #[test]
    fn nothing_recorded_is_not_yet() {
        let index = SessionIndex {
            media_id: "m".into(),
            live: true,
            ..Default::default()
        };
        assert!(matches!(plan(&index), Err(ClipError::NotYet(_))));
    }
}
