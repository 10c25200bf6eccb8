// SPDX-License-Identifier: MPL-2.0
//! Back-pressure between the streaming thread and the worker.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// Frames handed to the worker and not yet done.
///
/// With a live source the streaming thread never waits: when `max` frames
/// are already waiting the caller drops the next one (and warns). Without
/// one (files, tests) the streaming thread waits as it would on a full
/// queue, so that the result does not depend on the machine's speed.
pub struct WorkQueue {
    queued: Mutex<usize>,
    signal: Condvar,
    /// Whether upstream is live: 0 = not asked yet, 1 = live, 2 = not.
    live: AtomicU8,
    max: usize,
}

impl WorkQueue {
    pub fn new(max: usize) -> Self {
        Self {
            queued: Mutex::new(0),
            signal: Condvar::new(),
            live: AtomicU8::new(0),
            max: max.max(1),
        }
    }

    /// Forgets the count and the liveness (a new start).
    pub fn reset(&self) {
        *self.queued.lock().unwrap() = 0;
        self.live.store(0, Ordering::SeqCst);
    }

    /// Whether the source upstream of `sinkpad` is live (asked once).
    pub fn is_live(&self, sinkpad: &gst::Pad) -> bool {
        if self.live.load(Ordering::SeqCst) == 0 {
            let mut q = gst::query::Latency::new();
            let live = sinkpad.peer_query(&mut q) && q.result().0;
            gst::debug!(gst::CAT_DEFAULT, obj = sinkpad, "upstream is live: {live}");
            self.live.store(if live { 1 } else { 2 }, Ordering::SeqCst);
        }
        self.live.load(Ordering::SeqCst) == 1
    }

    /// Without a live source, waits until there is room (or `flushing`);
    /// with one, never waits. Says whether there is room.
    pub fn wait_for_room(&self, sinkpad: &gst::Pad, flushing: &AtomicBool) -> bool {
        let live = self.is_live(sinkpad);
        let mut n = self.queued.lock().unwrap();
        if live {
            return *n < self.max;
        }
        while *n >= self.max && !flushing.load(Ordering::SeqCst) {
            n = self
                .signal
                .wait_timeout(n, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        true
    }

    pub fn is_full(&self) -> bool {
        *self.queued.lock().unwrap() >= self.max
    }

    /// One more frame for the worker.
    pub fn add(&self) {
        *self.queued.lock().unwrap() += 1;
    }

    /// The worker is done with a frame.
    pub fn done(&self) {
        let mut n = self.queued.lock().unwrap();
        *n = n.saturating_sub(1);
        self.signal.notify_all();
    }

    /// Lets a waiting streaming thread look at its flushing flag again.
    pub fn wake(&self) {
        let _n = self.queued.lock().unwrap();
        self.signal.notify_all();
    }
}
