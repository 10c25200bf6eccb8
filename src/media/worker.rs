// SPDX-License-Identifier: MPL-2.0
//! The thread where an element writes: it takes commands in order from a
//! bounded queue, so that the streaming threads never wait for the disk
//! unless it falls that many commands behind.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// A writer thread and its queue.
pub struct Worker<C> {
    tx: mpsc::SyncSender<C>,
    handle: JoinHandle<()>,
}

impl<C: Send + 'static> Worker<C> {
    /// Starts thread `name` running `body` on the queue's receiving end; at
    /// most `capacity` commands wait.
    pub fn spawn(
        name: &str,
        capacity: usize,
        body: impl FnOnce(mpsc::Receiver<C>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(rx))?;
        Ok(Self { tx, handle })
    }

    /// A sender for the queue (send without holding the element's locks:
    /// a full queue waits).
    pub fn sender(&self) -> mpsc::SyncSender<C> {
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
pub fn send_all<C>(tx: Option<mpsc::SyncSender<C>>, commands: Vec<C>) {
    let Some(tx) = tx else { return };
    for c in commands {
        if tx.send(c).is_err() {
            break;
        }
    }
}
