// SPDX-License-Identifier: MPL-2.0
//! The pure part of `motionclipenc`: when capture windows open and close,
//! and which frames inside a window become output frames ([`Windows`]).
//!
//! Times are running time in ns. Windows start at ticks `origin + k ·
//! interval` (origin = the first frame), each served by the first frame at
//! or after it, and last `duration`. Inside a window, output frame slots
//! fall every `1/framerate` s from the window start; the first input frame
//! in a slot fills it and the others in that slot are dropped, so frame
//! rate reduction picks frames evenly in time whatever the input rate.

use super::thumbs::tick_after;

const NS: i128 = super::NS as i128;

/// Why a window was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A tick of `interval`.
    Periodic,
    /// The `capture-now` signal.
    OnDemand,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Periodic => "periodic",
            Trigger::OnDemand => "on-demand",
        }
    }
}

/// What to do with one input frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// The open window ended before this frame: its clip lasts this many ns.
    pub closed: Option<u64>,
    /// A window opens at this frame.
    pub opened: Option<Trigger>,
    /// The frame is an output frame, shown at this offset (ns) from the
    /// window start (the start of its slot).
    pub take: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    start: i64,
    /// Slots before this one are filled (or passed).
    next_slot: u64,
    /// The last filled slot.
    last_slot: Option<u64>,
}

/// Capture windows and frame picking; see the module documentation.
#[derive(Debug, Clone)]
pub struct Windows {
    interval: u64,
    duration: u64,
    framerate: u32,
    origin: Option<i64>,
    next_tick: Option<i64>,
    last: Option<i64>,
    demand: bool,
    open: Option<Open>,
}

impl Windows {
    /// `interval` and `duration` in ns (`interval` 0 = on demand only),
    /// `framerate` in frames per second (at least 1).
    pub fn new(interval: u64, duration: u64, framerate: u32) -> Self {
        Self {
            interval,
            duration: duration.max(1),
            framerate: framerate.max(1),
            origin: None,
            next_tick: None,
            last: None,
            demand: false,
            open: None,
        }
    }

    /// New settings; they apply from the next window. A new interval
    /// restarts the ticks from the last frame seen.
    pub fn configure(&mut self, interval: u64, duration: u64, framerate: u32) {
        self.duration = duration.max(1);
        self.framerate = framerate.max(1);
        if interval != self.interval {
            self.interval = interval;
            self.origin = self.last;
            self.next_tick = match (interval, self.last) {
                (0, _) | (_, None) => None,
                (i, Some(last)) => Some(last.saturating_add(i as i64)),
            };
        }
    }

    /// Asks for a window at the next frame (after the open one, if any).
    pub fn request(&mut self) {
        self.demand = true;
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Running time at which the open window started.
    pub fn open_start(&self) -> Option<i64> {
        self.open.map(|o| o.start)
    }

    /// Output frame slots in a whole window.
    pub fn slots(&self) -> u64 {
        (u128::from(self.duration) * u128::from(self.framerate)).div_ceil(NS as u128) as u64
    }

    /// Offset (ns) of slot `k` from the window start.
    pub fn slot_time(&self, k: u64) -> u64 {
        ((k as i128 * NS + i128::from(self.framerate) / 2) / i128::from(self.framerate)) as u64
    }

    /// Ends the open window now (caps change, EOS): the clip ends one output
    /// frame after its last frame. Returns its duration (ns), or `None`
    /// when no window was open.
    pub fn close_now(&mut self) -> Option<u64> {
        let open = self.open.take()?;
        Some(match open.last_slot {
            Some(k) => self.slot_time(k + 1).min(self.duration),
            None => 0,
        })
    }

    /// Forgets the schedule (a flush); a pending request stays.
    pub fn reset(&mut self) {
        self.origin = None;
        self.next_tick = None;
        self.last = None;
        self.open = None;
    }

    /// Offers the frame at running time `t`.
    pub fn offer(&mut self, t: i64) -> Decision {
        let mut d = Decision::default();
        if self.last.is_some_and(|last| t < last) {
            // Running time went backwards (a new segment): a new schedule,
            // and the open window ends where it got to.
            d.closed = self.close_now();
            self.reset();
        }
        self.last = Some(t);
        if self.origin.is_none() {
            self.origin = Some(t);
            self.next_tick = (self.interval > 0).then_some(t);
        }
        if let Some(open) = self.open
            && t >= open.start.saturating_add(self.duration as i64)
        {
            self.open = None;
            d.closed = Some(self.duration);
        }
        if self.open.is_none() {
            let periodic = self.next_tick.is_some_and(|tick| t >= tick);
            if periodic {
                // Ticks that passed while a window was open are not served
                // twice.
                self.next_tick = Some(tick_after(self.origin.unwrap_or(t), self.interval, t));
            }
            let trigger = if std::mem::take(&mut self.demand) {
                Some(Trigger::OnDemand)
            } else if periodic {
                Some(Trigger::Periodic)
            } else {
                None
            };
            if let Some(trigger) = trigger {
                self.open = Some(Open {
                    start: t,
                    next_slot: 0,
                    last_slot: None,
                });
                d.opened = Some(trigger);
            }
        }
        let framerate = self.framerate;
        if let Some(open) = self.open.as_mut() {
            let slot = ((t - open.start) as i128 * i128::from(framerate) / NS) as u64;
            if slot >= open.next_slot {
                open.next_slot = slot + 1;
                open.last_slot = Some(slot);
                d.take = Some(slot);
            }
        }
        d.take = d.take.map(|k| self.slot_time(k));
        d
    }
}

/// Frame delays of a GIF in hundredths of a second, from the frames'
/// offsets and the clip's end (ns). Rounded on the running sum, so the
/// total stays within 10 ms of the clip's duration; every delay is at
/// least 1.
pub fn gif_delays(offsets: &[u64], end: u64) -> Vec<u16> {
    let cs = |ns: u64| (ns + 5_000_000) / 10_000_000;
    offsets
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let next = offsets.get(i + 1).copied().unwrap_or(end.max(at));
            cs(next)
                .saturating_sub(cs(at))
                .clamp(1, u64::from(u16::MAX)) as u16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Feeds frames at `fps` from 0 for `seconds`; returns the windows as
    /// (start, trigger, frame offsets, closed duration).
    fn feed(w: &mut Windows, fps: i64, seconds: i64) -> Vec<(i64, Trigger, Vec<u64>, Option<u64>)> {
        let mut out: Vec<(i64, Trigger, Vec<u64>, Option<u64>)> = Vec::new();
        for n in 0..fps * seconds {
            let t = n * S / fps;
            let d = w.offer(t);
            if let Some(c) = d.closed {
                out.last_mut().unwrap().3 = Some(c);
            }
            if let Some(trigger) = d.opened {
                out.push((t, trigger, Vec::new(), None));
            }
            if let Some(off) = d.take {
                out.last_mut().unwrap().2.push(off);
            }
        }
        out
    }

    #[test]
    fn windows_every_interval_with_evenly_picked_frames() {
        let mut w = Windows::new(60 * S as u64, 3 * S as u64, 10);
        assert_eq!(w.slots(), 30);
        let got = feed(&mut w, 30, 130);
        let starts: Vec<i64> = got.iter().map(|g| g.0).collect();
        assert_eq!(starts, [0, 60 * S, 120 * S]);
        for (_, trigger, offsets, _) in &got {
            assert_eq!(*trigger, Trigger::Periodic);
            let expect: Vec<u64> = (0..30).map(|k| k * 100_000_000).collect();
            assert_eq!(offsets, &expect);
        }
        assert_eq!(got[0].3, Some(3 * S as u64));
        assert_eq!(got[2].3, Some(3 * S as u64));
    }

    #[test]
    fn picks_by_time_not_by_count() {
        // 25 fps in, 10 fps out: every 100 ms slot gets the first frame in it.
        let mut w = Windows::new(0, S as u64, 10);
        w.request();
        let mut taken = Vec::new();
        for n in 0..25 {
            let t = n * 40_000_000;
            if w.offer(t).take.is_some() {
                taken.push(t / 1_000_000);
            }
        }
        assert_eq!(taken, [0, 120, 200, 320, 400, 520, 600, 720, 800, 920]);
        // Input slower than the output rate: slots are skipped, not doubled.
        let mut w = Windows::new(0, S as u64, 10);
        w.request();
        let offs: Vec<u64> = (0..5)
            .filter_map(|n| w.offer(n * 200_000_000).take)
            .collect();
        assert_eq!(
            offs,
            [0, 200_000_000, 400_000_000, 600_000_000, 800_000_000]
        );
    }

    #[test]
    fn on_demand_and_early_close() {
        let mut w = Windows::new(0, 3 * S as u64, 10);
        assert_eq!(w.offer(0), Decision::default());
        w.request();
        let d = w.offer(S);
        assert_eq!(d.opened, Some(Trigger::OnDemand));
        assert_eq!(d.take, Some(0));
        w.offer(S + 100_000_000);
        w.offer(S + 150_000_000);
        // A caps change: the clip ends one output frame after its last one.
        assert_eq!(w.close_now(), Some(200_000_000));
        assert_eq!(w.close_now(), None);
        assert!(w.offer(2 * S).opened.is_none());
    }

    #[test]
    fn a_request_during_a_window_starts_the_next_one() {
        let mut w = Windows::new(0, S as u64, 10);
        w.request();
        w.offer(0);
        w.request();
        assert!(w.offer(S / 2).opened.is_none());
        let d = w.offer(S);
        assert_eq!(d.closed, Some(S as u64));
        assert_eq!(d.opened, Some(Trigger::OnDemand));
    }

    #[test]
    fn windows_longer_than_the_interval_do_not_overlap() {
        let mut w = Windows::new(2 * S as u64, 3 * S as u64, 5);
        let got = feed(&mut w, 10, 10);
        let starts: Vec<i64> = got.iter().map(|g| g.0).collect();
        assert_eq!(starts, [0, 3 * S, 6 * S, 9 * S]);
    }

    #[test]
    fn time_going_backwards_restarts() {
        let mut w = Windows::new(10 * S as u64, S as u64, 10);
        assert!(w.offer(5 * S).opened.is_some());
        let d = w.offer(0);
        assert_eq!(d.closed, Some(100_000_000));
        assert!(d.opened.is_some());
    }

    #[test]
    fn configure_applies_to_the_next_window() {
        let mut w = Windows::new(0, S as u64, 10);
        w.offer(0);
        w.configure(5 * S as u64, 2 * S as u64, 4);
        assert!(w.offer(S).opened.is_none());
        let d = w.offer(5 * S);
        assert_eq!(d.opened, Some(Trigger::Periodic));
        assert_eq!(w.slots(), 8);
        assert_eq!(w.slot_time(3), 750_000_000);
    }

    #[test]
    fn gif_delays_keep_the_total() {
        let offs: Vec<u64> = (0..30).map(|k| k * 1_000_000_000 / 30).collect();
        let d = gif_delays(&offs, 1_000_000_000);
        assert_eq!(d.iter().map(|&v| u32::from(v)).sum::<u32>(), 100);
        assert!(d.iter().all(|&v| v == 3 || v == 4));
        assert_eq!(gif_delays(&[0, 100_000_000], 200_000_000), [10, 10]);
        assert_eq!(gif_delays(&[0], 0), [1]);
    }
}
