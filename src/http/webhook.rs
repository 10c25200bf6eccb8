// SPDX-License-Identifier: MPL-2.0
//! Webhooks: a JSON notice POSTed for every clip (like Ant Media's
//! vodReady), from a thread of its own with a bounded queue, retries and a
//! timeout. A hook that is down or slow never blocks or fails the pipeline:
//! notices that can't be delivered are reported and dropped.

use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;

use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Notices waiting for delivery before new ones are dropped.
const QUEUE: usize = 256;
/// Attempts per notice, and the wait before each retry.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Webhook {
    tx: mpsc::SyncSender<serde_json::Value>,
}

/// Checks a webhook URL: `http://host[:port]/path`.
pub fn parse_url(url: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("webhook-url {url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(format!(
            "webhook-url {url:?}: only http:// hooks are supported (put a TLS proxy in front)"
        )),
        _ => Err(format!("webhook-url {url:?} must be an http:// URL")),
    }
}

impl Webhook {
    /// Starts the delivery thread of `element`: a notice that could not be
    /// delivered is the element's warning.
    pub fn start_for(url: &str, element: &gst::Element) -> Result<Webhook, String> {
        let weak = element.downgrade();
        Self::start(url, move |reason| {
            if let Some(obj) = weak.upgrade() {
                gst::element_warning!(obj, gst::ResourceError::Write, ("{}", reason));
            }
        })
    }

    /// Starts the delivery thread; `failed` is called (on that thread) with
    /// a reason when a notice could not be delivered.
    pub fn start(url: &str, failed: impl Fn(String) + Send + 'static) -> Result<Webhook, String> {
        let uri = parse_url(url)?;
        let (tx, rx) = mpsc::sync_channel::<serde_json::Value>(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .on_thread_start(super::block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the webhook runtime: {e}"))?;
        std::thread::Builder::new()
            .name("liveclip-webhook".into())
            .spawn(move || {
                super::block_sigpipe();
                let client: Client<_, Full<bytes::Bytes>> =
                    Client::builder(TokioExecutor::new()).build_http();
                while let Ok(notice) = rx.recv() {
                    let body = bytes::Bytes::from(notice.to_string());
                    let mut last = String::new();
                    let mut delivered = false;
                    for attempt in 0..=BACKOFF.len() {
                        if attempt > 0 {
                            std::thread::sleep(BACKOFF[attempt - 1]);
                        }
                        let request = hyper::Request::post(uri.clone())
                            .header("content-type", "application/json")
                            .header("user-agent", "liveclip")
                            .body(Full::new(body.clone()));
                        let Ok(request) = request else { break };
                        let result = runtime.block_on(async {
                            tokio::time::timeout(TIMEOUT, client.request(request)).await
                        });
                        match result {
                            Ok(Ok(resp)) if resp.status().is_success() => {
                                delivered = true;
                                break;
                            }
                            Ok(Ok(resp)) => last = format!("the hook answered {}", resp.status()),
                            Ok(Err(e)) => last = format!("{e}"),
                            Err(_) => last = format!("no answer within {} s", TIMEOUT.as_secs()),
                        }
                    }
                    if !delivered {
                        failed(format!(
                            "webhook {uri}: notice dropped after {} attempts: {last}",
                            BACKOFF.len() + 1
                        ));
                    }
                }
            })
            .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
        Ok(Webhook { tx })
    }

    /// Queues a notice; `false` when the queue is full (the notice is
    /// dropped; the caller reports it).
    pub fn notify(&self, notice: serde_json::Value) -> bool {
        self.tx.try_send(notice).is_ok()
    }
}
