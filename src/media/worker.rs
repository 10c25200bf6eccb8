// SPDX-License-Identifier: MPL-2.0
//! The thread where an element writes: it takes commands in order from a
//! bounded queue, so that the streaming threads never wait for the disk
//! unless it falls that far behind. The queue is bounded by a number of
//! commands and, for commands that carry media, by the bytes they hold, so
//! that an element's memory stays bounded when its disk stalls whatever
//! the bitrate (and a process recording many streams cannot be made to
//! hold minutes of every stream).

use std::sync::mpsc::{self, RecvError, SendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Bytes of queued commands and the most allowed.
struct Budget {
    max: usize,
    /// (bytes queued, the receiving end is gone)
    state: Mutex<(usize, bool)>,
    freed: Condvar,
}

impl Budget {
    /// Waits until `bytes` more fit (a command alone always fits), unless
    /// the receiving end is gone.
    fn take(&self, bytes: usize) {
        let mut st = self.state.lock().unwrap();
        while st.0 > 0 && st.0 + bytes > self.max && !st.1 {
            st = self.freed.wait(st).unwrap();
        }
        st.0 += bytes;
    }

    fn give_back(&self, bytes: usize) {
        let mut st = self.state.lock().unwrap();
        st.0 = st.0.saturating_sub(bytes);
        self.freed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().1 = true;
        self.freed.notify_all();
    }
}

/// The sending end of a writer's queue.
pub struct Sender<C> {
    tx: mpsc::SyncSender<(C, usize)>,
    budget: Arc<Budget>,
    weigh: fn(&C) -> usize,
}

impl<C> Clone for Sender<C> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            weigh: self.weigh,
        }
    }
}

impl<C> Sender<C> {
    /// Queues `c`, waiting while the queue is full (in commands or bytes);
    /// gives it back when the thread is gone.
    pub fn send(&self, c: C) -> Result<(), SendError<C>> {
        let bytes = (self.weigh)(&c);
        self.budget.take(bytes);
        self.tx.send((c, bytes)).map_err(|SendError((c, _))| {
            self.budget.give_back(bytes);
            SendError(c)
        })
    }
}

/// The receiving end of a writer's queue.
pub struct Receiver<C> {
    rx: mpsc::Receiver<(C, usize)>,
    budget: Arc<Budget>,
}

impl<C> Receiver<C> {
    /// The next command; an error once every sender is gone and the queue
    /// is empty. Its bytes leave the budget as it leaves the queue.
    pub fn recv(&self) -> Result<C, RecvError> {
        let (c, bytes) = self.rx.recv()?;
        self.budget.give_back(bytes);
        Ok(c)
    }
}

impl<C> Drop for Receiver<C> {
    fn drop(&mut self) {
        self.budget.close();
    }
}

/// A bounded queue: at most `commands` commands, and at most `bytes`
/// bytes as `weigh` counts them (a single command larger than that still
/// passes, alone).
pub fn queue<C>(commands: usize, bytes: usize, weigh: fn(&C) -> usize) -> (Sender<C>, Receiver<C>) {
    let (tx, rx) = mpsc::sync_channel(commands);
    let budget = Arc::new(Budget {
        max: bytes,
        state: Mutex::new((0, false)),
        freed: Condvar::new(),
    });
    (
        Sender {
            tx,
            budget: budget.clone(),
            weigh,
        },
        Receiver { rx, budget },
    )
}

/// How much lower than the streaming threads' the CPU priority of
/// liveclip's own threads off the streaming path is (nice steps).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority by [`BACKGROUND_NICE`] (on
/// Linux each thread has its own nice value). liveclip's own threads off
/// the streaming path (writers, frame workers, clip workers) call it when
/// they start: when many streams' periodic clips are written at once, the
/// copies into the page cache took both cores for a second or two and the
/// streaming threads that receive live media waited their turn behind
/// them; at a lower priority that work waits instead. Raising a thread's
/// nice value needs no privilege; an error leaves the thread as it was.
pub fn background_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority and setpriority only read and change the
    // scheduling priority of the calling thread (its id from gettid).
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (now + BACKGROUND_NICE).min(19));
    }
}

/// A writer thread and its queue.
pub struct Worker<C> {
    tx: Sender<C>,
    handle: JoinHandle<()>,
}

impl<C: Send + 'static> Worker<C> {
    /// Starts thread `name` running `body` on the queue's receiving end; at
    /// most `capacity` commands wait.
    pub fn spawn(
        name: &str,
        capacity: usize,
        body: impl FnOnce(Receiver<C>) + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::spawn_bounded(name, capacity, usize::MAX, |_| 0, body)
    }

    /// Like [`Worker::spawn`], with at most `bytes` bytes waiting as
    /// `weigh` counts them.
    pub fn spawn_bounded(
        name: &str,
        capacity: usize,
        bytes: usize,
        weigh: fn(&C) -> usize,
        body: impl FnOnce(Receiver<C>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = queue(capacity, bytes, weigh);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                background_thread();
                body(rx)
            })?;
        Ok(Self { tx, handle })
    }

    /// A sender for the queue (send without holding the element's locks:
    /// a full queue waits).
    pub fn sender(&self) -> Sender<C> {
        self.tx.clone()
    }

    /// Closes the queue and waits until the thread has done what it holds.
    pub fn stop(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

/// Sends `commands` in order; stops at the first that finds the thread
/// gone.
pub fn send_all<C>(tx: Option<Sender<C>>, commands: Vec<C>) {
    let Some(tx) = tx else { return };
    for c in commands {
        if tx.send(c).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn a_stalled_receiver_holds_at_most_the_byte_budget() {
        // Commands of 100 bytes, at most 1000 commands or 350 bytes.
        let (tx, rx) = queue::<Vec<u8>>(1000, 350, Vec::len);
        let sent = Arc::new(AtomicUsize::new(0));
        let sender = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    tx.send(vec![0; 100]).unwrap();
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sent.load(Ordering::SeqCst), 3, "3 × 100 bytes fit in 350");
        // Taking one lets one more in.
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(sent.load(Ordering::SeqCst), 4);
        for _ in 0..9 {
            rx.recv().unwrap();
        }
        sender.join().unwrap();
        assert!(rx.recv().is_err(), "every sender is gone");
    }

    #[test]
    fn a_command_over_the_budget_passes_alone_and_a_gone_receiver_frees_senders() {
        let (tx, rx) = queue::<Vec<u8>>(10, 50, Vec::len);
        tx.send(vec![0; 80]).unwrap();
        let waiting = std::thread::spawn(move || tx.send(vec![0; 10]).is_err());
        std::thread::sleep(Duration::from_millis(100));
        drop(rx);
        assert!(
            waiting.join().unwrap(),
            "the send fails once the thread is gone"
        );
    }
}
