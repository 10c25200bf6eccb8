// SPDX-License-Identifier: MPL-2.0
//! The pure parts of `thumbnailer`: which frames become thumbnails
//! ([`Picker`]), how a frame maps onto the requested size ([`Geometry`]),
//! and the storyboard's sprite layout and WebVTT file ([`Storyboard`]).

use std::fmt::Write as _;

/// Why a frame was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first usable frame at or after a tick of `interval`.
    Periodic,
    /// Asked for with the `snapshot` signal.
    Snapshot,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Periodic => "periodic",
            Trigger::Snapshot => "snapshot",
        }
    }
}

/// Chooses thumbnails among the usable frames (every raw frame, or the
/// keyframes of encoded video), in running time (ns).
///
/// Ticks fall at `origin + k * interval`, where `origin` is the first usable
/// frame. A tick is served by the first usable frame at or after it; ticks
/// that pass while waiting (a GOP longer than the interval) are served by
/// that same frame, so there is at most one periodic thumbnail per usable
/// frame and none is ever made twice for one instant. A pending snapshot
/// takes the next usable frame whatever the schedule.
#[derive(Debug, Clone)]
pub struct Picker {
    interval: u64,
    origin: Option<i64>,
    next_tick: Option<i64>,
    last: Option<i64>,
    snapshot: bool,
}

impl Picker {
    /// `interval` in ns; 0 = on demand only.
    pub fn new(interval: u64) -> Self {
        Self {
            interval,
            origin: None,
            next_tick: None,
            last: None,
            snapshot: false,
        }
    }

    /// Changes the interval; the schedule continues from the last usable
    /// frame seen.
    pub fn set_interval(&mut self, interval: u64) {
        if interval == self.interval {
            return;
        }
        self.interval = interval;
        self.next_tick = match (interval, self.last) {
            (0, _) => None,
            (i, Some(last)) => {
                self.origin = Some(last);
                Some(last.saturating_add(i as i64))
            }
            (_, None) => None,
        };
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Forgets the schedule (after a flush): the next usable frame starts a
    /// new one. A pending snapshot stays pending.
    pub fn reset(&mut self) {
        self.origin = None;
        self.next_tick = None;
        self.last = None;
    }

    /// Asks for the next usable frame.
    pub fn request_snapshot(&mut self) {
        self.snapshot = true;
    }

    pub fn snapshot_pending(&self) -> bool {
        self.snapshot
    }

    /// Running time of the first usable frame of the schedule.
    pub fn origin(&self) -> Option<i64> {
        self.origin
    }

    /// Offers a usable frame at running time `t`; says whether (and why) it
    /// becomes a thumbnail.
    pub fn offer(&mut self, t: i64) -> Option<Trigger> {
        // Time going backwards (a new segment that restarts running time)
        // restarts the schedule.
        if self.last.is_some_and(|last| t < last) {
            self.reset();
        }
        self.last = Some(t);
        if self.origin.is_none() {
            self.origin = Some(t);
            self.next_tick = (self.interval > 0).then_some(t);
        }
        let periodic = self.next_tick.is_some_and(|tick| t >= tick);
        if periodic {
            self.next_tick = Some(tick_after(self.origin.unwrap_or(t), self.interval, t));
        }
        if std::mem::take(&mut self.snapshot) {
            Some(Trigger::Snapshot)
        } else if periodic {
            Some(Trigger::Periodic)
        } else {
            None
        }
    }
}

/// The first tick of `origin + k * interval` strictly after `t` (`interval`
/// in ns, not 0): ticks that passed while waiting are not served twice.
pub fn tick_after(origin: i64, interval: u64, t: i64) -> i64 {
    let i = interval.max(1) as i64;
    let k = (t - origin).div_euclid(i) + 1;
    origin.saturating_add(k.saturating_mul(i))
}

/// How a frame is fitted into `width` × `height` when both are set (the
/// names of Mux's and Cloudflare's thumbnail options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Scale to fit inside the box keeping the aspect ratio; the image is
    /// smaller than the box in one dimension.
    #[default]
    Preserve,
    /// Scale to cover the box keeping the aspect ratio, cut the overflow
    /// evenly from both sides; the image is exactly the box.
    Crop,
    /// Scale to fit inside the box keeping the aspect ratio, fill the rest
    /// with black bars; the image is exactly the box.
    Pad,
    /// Scale to the box, distorting the aspect ratio.
    Stretch,
}

/// Borders in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sides {
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
}

impl Sides {
    pub fn is_zero(&self) -> bool {
        *self == Sides::default()
    }
}

/// What to do with a `src_w` × `src_h` frame: crop in source pixels, scale
/// to `scaled` square pixels, then pad to `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub crop: Sides,
    pub scaled: (u32, u32),
    pub pad: Sides,
    pub out: (u32, u32),
}

impl Geometry {
    /// Geometry for a frame of `src` pixels with pixel aspect ratio `par`
    /// (num, den) and a requested `width` × `height` (0 = derive from the
    /// other keeping the display aspect; both 0 = the source's display size).
    /// Every output is square-pixel and at least 1×1.
    pub fn compute(src: (u32, u32), par: (u32, u32), width: u32, height: u32, fit: Fit) -> Self {
        let (sw, sh) = (src.0.max(1), src.1.max(1));
        let (pn, pd) = if par.0 == 0 || par.1 == 0 {
            (1, 1)
        } else {
            par
        };
        // Display size in square pixels.
        let dw = f64::from(sw) * f64::from(pn) / f64::from(pd);
        let dh = f64::from(sh);
        let round = |v: f64| (v.round() as u32).max(1);
        let plain = |w: u32, h: u32| Geometry {
            crop: Sides::default(),
            scaled: (w, h),
            pad: Sides::default(),
            out: (w, h),
        };
        match (width, height) {
            (0, 0) => plain(round(dw), sh),
            (w, 0) => plain(w, round(f64::from(w) * dh / dw)),
            (0, h) => plain(round(f64::from(h) * dw / dh), h),
            (w, h) => match fit {
                Fit::Stretch => plain(w, h),
                Fit::Preserve | Fit::Pad => {
                    let s = (f64::from(w) / dw).min(f64::from(h) / dh);
                    let iw = round(dw * s).min(w);
                    let ih = round(dh * s).min(h);
                    if fit == Fit::Preserve {
                        plain(iw, ih)
                    } else {
                        let (l, t) = ((w - iw) / 2, (h - ih) / 2);
                        Geometry {
                            crop: Sides::default(),
                            scaled: (iw, ih),
                            pad: Sides {
                                left: l,
                                right: w - iw - l,
                                top: t,
                                bottom: h - ih - t,
                            },
                            out: (w, h),
                        }
                    }
                }
                Fit::Crop => {
                    let target = f64::from(w) / f64::from(h);
                    let mut crop = Sides::default();
                    if dw / dh > target {
                        // Wider than the box: keep the middle columns.
                        let keep_display = dh * target;
                        let keep = round(keep_display * f64::from(pd) / f64::from(pn)).min(sw);
                        crop.left = (sw - keep) / 2;
                        crop.right = sw - keep - crop.left;
                    } else {
                        // Taller: keep the middle rows.
                        let keep = round(dw / target).min(sh);
                        crop.top = (sh - keep) / 2;
                        crop.bottom = sh - keep - crop.top;
                    }
                    Geometry {
                        crop,
                        scaled: (w, h),
                        pad: Sides::default(),
                        out: (w, h),
                    }
                }
            },
        }
    }
}

/// One storyboard tile: where it is in the sprite and when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Start in ns of recording time (since the first frame).
    pub start: i64,
    pub x: u32,
    pub y: u32,
}

/// The sprite sheet layout and cue list of a trick-play storyboard: tiles
/// of one cell size, `columns` per row, filled row by row.
#[derive(Debug, Clone)]
pub struct Storyboard {
    pub columns: u32,
    /// Cell size: the size of the first tile.
    pub cell: (u32, u32),
    pub tiles: Vec<Tile>,
}

/// The largest sprite dimension a JPEG can hold.
pub const MAX_SPRITE_SIDE: u32 = 65_535;

impl Storyboard {
    pub fn new(columns: u32, cell: (u32, u32)) -> Self {
        Self {
            columns: columns.max(1),
            cell: (cell.0.max(1), cell.1.max(1)),
            tiles: Vec::new(),
        }
    }

    /// Sprite size for the tiles so far: `columns` cells wide (fewer while
    /// the first row fills), as many rows as needed.
    pub fn sprite_size(&self) -> (u32, u32) {
        let n = self.tiles.len() as u32;
        let cols = n.clamp(1, self.columns);
        let rows = n.div_ceil(self.columns).max(1);
        (cols * self.cell.0, rows * self.cell.1)
    }

    /// Adds a tile starting at `start`; returns its position, or `None`
    /// when the sprite would pass what a JPEG can hold.
    pub fn add(&mut self, start: i64) -> Option<Tile> {
        let i = self.tiles.len() as u64;
        let col = (i % u64::from(self.columns)) as u32;
        let row = i / u64::from(self.columns);
        let y = row * u64::from(self.cell.1);
        if y + u64::from(self.cell.1) > u64::from(MAX_SPRITE_SIDE)
            || u64::from(self.columns) * u64::from(self.cell.0) > u64::from(MAX_SPRITE_SIDE)
        {
            return None;
        }
        let tile = Tile {
            start,
            x: col * self.cell.0,
            y: y as u32,
        };
        self.tiles.push(tile);
        Some(tile)
    }

    /// The WebVTT file: one cue per tile, from its start to the next tile's
    /// start (the last one lasts `last_duration` ns), pointing at
    /// `sprite#xywh=x,y,w,h`.
    pub fn vtt(&self, sprite: &str, last_duration: i64) -> String {
        let mut out = String::from("WEBVTT\n");
        for (i, t) in self.tiles.iter().enumerate() {
            let end = self
                .tiles
                .get(i + 1)
                .map(|n| n.start)
                .unwrap_or(t.start.saturating_add(last_duration.max(1)))
                .max(t.start + 1);
            let _ = write!(
                out,
                "\n{} --> {}\n{sprite}#xywh={},{},{},{}\n",
                vtt_time(t.start),
                vtt_time(end),
                t.x,
                t.y,
                self.cell.0,
                self.cell.1
            );
        }
        out
    }
}

/// `HH:MM:SS.mmm` (WebVTT timestamps; negative times clamp to zero).
pub fn vtt_time(ns: i64) -> String {
    let ms = ns.max(0) / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Parses an `HH:MM:SS.mmm` or `MM:SS.mmm` WebVTT timestamp into ns.
pub fn parse_vtt_time(s: &str) -> Option<i64> {
    let (hms, frac) = s.trim().split_once('.')?;
    if frac.len() != 3 {
        return None;
    }
    let ms: i64 = frac.parse().ok()?;
    let parts: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [h, m, s] => h * 3600 + m * 60 + s,
        [m, s] => m * 60 + s,
        _ => return None,
    };
    Some((secs * 1000 + ms) * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn picker_takes_the_first_frame_at_or_after_each_tick() {
        let mut p = Picker::new(2 * S as u64);
        // Keyframes every 1 s from 0 to 9 s.
        let taken: Vec<i64> = (0..10)
            .map(|k| k * S)
            .filter(|&t| p.offer(t).is_some())
            .collect();
        assert_eq!(taken, vec![0, 2 * S, 4 * S, 6 * S, 8 * S]);
    }

    #[test]
    fn picker_with_long_gops_skips_passed_ticks() {
        let mut p = Picker::new(2 * S as u64);
        // Keyframes every 5 s: ticks 2 and 4 are both served by 5 s.
        let taken: Vec<i64> = [0, 5, 10, 15]
            .iter()
            .map(|k| k * S)
            .filter(|&t| p.offer(t).is_some())
            .collect();
        assert_eq!(taken, vec![0, 5 * S, 10 * S, 15 * S]);
        // Raw frames at 30 fps: one every 2 s exactly, the tick frames.
        let mut p = Picker::new(2 * S as u64);
        let taken: Vec<i64> = (0..300)
            .map(|k| 1000 + k * S / 30)
            .filter(|&t| p.offer(t).is_some())
            .collect();
        assert_eq!(taken.len(), 5);
        assert_eq!(taken[1], 1000 + 2 * S);
    }

    #[test]
    fn picker_snapshots_and_on_demand() {
        let mut p = Picker::new(0);
        assert_eq!(p.offer(0), None);
        p.request_snapshot();
        assert_eq!(p.offer(S), Some(Trigger::Snapshot));
        assert_eq!(p.offer(2 * S), None);
        // A snapshot does not move the periodic ticks.
        let mut p = Picker::new(10 * S as u64);
        assert_eq!(p.offer(0), Some(Trigger::Periodic));
        p.request_snapshot();
        assert_eq!(p.offer(3 * S), Some(Trigger::Snapshot));
        assert_eq!(p.offer(9 * S), None);
        assert_eq!(p.offer(10 * S), Some(Trigger::Periodic));
    }

    #[test]
    fn picker_restarts_when_time_goes_back_or_interval_changes() {
        let mut p = Picker::new(2 * S as u64);
        assert!(p.offer(100 * S).is_some());
        assert!(p.offer(101 * S).is_none());
        assert!(p.offer(5 * S).is_some());
        assert!(p.offer(6 * S).is_none());
        p.set_interval(S as u64);
        assert!(p.offer(6 * S + 1).is_none());
        assert!(p.offer(7 * S).is_some());
        p.set_interval(0);
        assert!(p.offer(100 * S).is_none());
    }

    fn geo(src: (u32, u32), par: (u32, u32), w: u32, h: u32, fit: Fit) -> Geometry {
        Geometry::compute(src, par, w, h, fit)
    }

    #[test]
    fn geometry_sizes_from_one_or_no_side() {
        assert_eq!(geo((1920, 1080), (1, 1), 0, 0, Fit::Pad).out, (1920, 1080));
        assert_eq!(geo((1920, 1080), (1, 1), 320, 0, Fit::Crop).out, (320, 180));
        assert_eq!(geo((1920, 1080), (1, 1), 0, 90, Fit::Crop).out, (160, 90));
        // Anamorphic 720x576 at 16:15 PAR displays as 768x576.
        assert_eq!(
            geo((720, 576), (16, 15), 0, 0, Fit::Preserve).out,
            (768, 576)
        );
        assert_eq!(
            geo((720, 576), (16, 15), 384, 0, Fit::Preserve).out,
            (384, 288)
        );
        // Degenerate input never gives an empty image.
        assert_eq!(geo((0, 0), (0, 0), 0, 0, Fit::Preserve).out, (1, 1));
        assert_eq!(geo((4000, 2), (1, 1), 100, 0, Fit::Preserve).out, (100, 1));
    }

    #[test]
    fn geometry_fit_modes() {
        let src = (1920, 1080);
        let p = geo(src, (1, 1), 300, 300, Fit::Preserve);
        assert_eq!((p.out, p.scaled), ((300, 169), (300, 169)));
        assert!(p.crop.is_zero() && p.pad.is_zero());

        let s = geo(src, (1, 1), 300, 300, Fit::Stretch);
        assert_eq!((s.out, s.scaled), ((300, 300), (300, 300)));

        let pad = geo(src, (1, 1), 300, 300, Fit::Pad);
        assert_eq!(pad.out, (300, 300));
        assert_eq!(pad.scaled, (300, 169));
        assert_eq!(
            pad.pad,
            Sides {
                left: 0,
                right: 0,
                top: 65,
                bottom: 66
            }
        );

        let c = geo(src, (1, 1), 300, 300, Fit::Crop);
        assert_eq!((c.out, c.scaled), ((300, 300), (300, 300)));
        assert_eq!(
            c.crop,
            Sides {
                left: 420,
                right: 420,
                top: 0,
                bottom: 0
            }
        );
        // A tall box over a wide source crops columns; a wide box over a
        // tall source crops rows.
        let c = geo((1080, 1920), (1, 1), 320, 90, Fit::Crop);
        assert_eq!(c.crop.left + c.crop.right, 0);
        assert_eq!(c.crop.top + c.crop.bottom, 1920 - 304);
        // Crop honours the pixel aspect ratio: 720x576 at 16:15 is 768x576
        // on screen; a square crop keeps 576 display = 540 source columns.
        let c = geo((720, 576), (16, 15), 100, 100, Fit::Crop);
        assert_eq!(
            c.crop,
            Sides {
                left: 90,
                right: 90,
                top: 0,
                bottom: 0
            }
        );
        // Pad on a source that already has the box's aspect adds nothing.
        assert!(geo(src, (1, 1), 160, 90, Fit::Pad).pad.is_zero());
    }

    #[test]
    fn storyboard_layout_and_vtt() {
        let mut sb = Storyboard::new(3, (160, 90));
        for k in 0..5 {
            sb.add(k * 10 * S).unwrap();
        }
        assert_eq!(sb.sprite_size(), (480, 180));
        assert_eq!(
            sb.tiles[4],
            Tile {
                start: 40 * S,
                x: 160,
                y: 90
            }
        );
        let vtt = sb.vtt("sprite.jpg", 10 * S);
        let expected = "WEBVTT\n\n\
            00:00:00.000 --> 00:00:10.000\nsprite.jpg#xywh=0,0,160,90\n\n\
            00:00:10.000 --> 00:00:20.000\nsprite.jpg#xywh=160,0,160,90\n\n\
            00:00:20.000 --> 00:00:30.000\nsprite.jpg#xywh=320,0,160,90\n\n\
            00:00:30.000 --> 00:00:40.000\nsprite.jpg#xywh=0,90,160,90\n\n\
            00:00:40.000 --> 00:00:50.000\nsprite.jpg#xywh=160,90,160,90\n";
        assert_eq!(vtt, expected);
        let one = Storyboard::new(5, (10, 10));
        assert_eq!(one.sprite_size(), (10, 10));
    }

    #[test]
    fn storyboard_stops_at_the_jpeg_limit() {
        let mut sb = Storyboard::new(1, (100, 30_000));
        assert!(sb.add(0).is_some());
        assert!(sb.add(1).is_some());
        assert!(sb.add(2).is_none());
        assert_eq!(sb.tiles.len(), 2);
    }

    #[test]
    fn vtt_times() {
        assert_eq!(vtt_time(0), "00:00:00.000");
        assert_eq!(vtt_time(-5), "00:00:00.000");
        assert_eq!(vtt_time(3_723_456_000_000), "01:02:03.456");
        assert_eq!(parse_vtt_time("01:02:03.456"), Some(3_723_456_000_000));
        assert_eq!(parse_vtt_time("02:03.456"), Some(123_456_000_000));
        assert_eq!(parse_vtt_time("1:2"), None);
        assert_eq!(parse_vtt_time("00:00:01.5"), None);
    }
}
