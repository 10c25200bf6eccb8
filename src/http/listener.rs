// SPDX-License-Identifier: MPL-2.0
//! The server's connections, bounded so that no client can take the API
//! (or the process's file descriptors, which the recording needs) away
//! from the others:
//! - at most [`MAX_CONNECTIONS`] at once (past that, new ones wait in the
//!   kernel's backlog), and at most [`PER_CLIENT`] from one address (more
//!   are answered 503 at once): one source (a reverse proxy in front may
//!   be the only one) can use most slots but never the last [`RESERVE`];
//! - a request's headers must arrive within [`HEADER_TIMEOUT`] (a client
//!   trickling a header line now and then is closed), and a connection
//!   that neither reads nor writes for [`IDLE`] is closed;
//! - the answers hyper makes itself for requests it cannot parse (400, 414,
//!   431) carry the same JSON body as every other error.
//!
//! Each connection is served by hyper's HTTP/1 server with the axum
//! router as its service.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::{Instant, Sleep};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections kept for other addresses than the busiest one.
pub const RESERVE: usize = 64;
/// Connections one client address may hold at once.
pub const PER_CLIENT: usize = MAX_CONNECTIONS - RESERVE;
/// A request's headers must have arrived within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection without any progress for this long is closed.
pub const IDLE: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, app: axum::Router, mut shutdown: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let clients = Clients::default();
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors or a connection reset before accept:
                // wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Some(client) = clients.enter(addr.ip()) else {
            tokio::spawn(refuse(stream, addr));
            continue;
        };
        let io = Connection {
            stream,
            _permit: permit,
            _client: client,
            idle: Box::pin(tokio::time::sleep(IDLE)),
            pending: Vec::new(),
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .await;
        });
    }
}

/// Answers a connection over [`PER_CLIENT`] with a JSON 503 and closes it.
async fn refuse(mut stream: TcpStream, addr: SocketAddr) {
    let body = serde_json::json!({
        "error": format!(
            "{} has {PER_CLIENT} connections open to this server already",
            addr.ip()
        ),
        "status": 503,
        "kind": "busy",
    })
    .to_string();
    let answer = response(503, "Service Unavailable", &body, &["retry-after: 1"]);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
}

/// A complete HTTP/1.1 response that closes the connection.
fn response(status: u16, reason: &str, body: &str, extra: &[&str]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.push_str(body);
    head.into_bytes()
}

/// Connections per client address.
#[derive(Default, Clone)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection of a client; counted until dropped.
struct ClientSlot {
    clients: Clients,
    ip: IpAddr,
}

impl Clients {
    fn enter(&self, ip: IpAddr) -> Option<ClientSlot> {
        let mut map = self.0.lock().unwrap();
        let n = map.entry(ip).or_default();
        if *n >= PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.clients.0.lock().unwrap();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The JSON answer for hyper's own answer to a request it could not parse
/// (`HTTP/1.1 400|414|431 …` with an empty body), if `data` is one.
fn json_for_parse_error(data: &[u8]) -> Option<Vec<u8>> {
    let head = data.strip_prefix(b"HTTP/1.1 ")?;
    if head.len() < 3 {
        return None;
    }
    let empty = data
        .windows(19)
        .any(|w| w.eq_ignore_ascii_case(b"content-length: 0\r\n"));
    if !empty {
        return None;
    }
    let (status, reason, kind, what) = match &head[..3] {
        b"400" => (
            400,
            "Bad Request",
            "bad-request",
            "the request is not valid HTTP/1.1",
        ),
        b"414" => (
            414,
            "URI Too Long",
            "bad-request",
            "the request target is too long",
        ),
        b"431" => (
            431,
            "Request Header Fields Too Large",
            "bad-request",
            "the request's headers are too large",
        ),
        _ => return None,
    };
    let body = serde_json::json!({ "error": what, "status": status, "kind": kind }).to_string();
    Some(response(status, reason, &body, &[]))
}

/// An accepted connection: its slots are freed when it is dropped.
struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _client: ClientSlot,
    idle: Pin<Box<Sleep>>,
    /// A replacement answer still to be written.
    pending: Vec<u8>,
}

impl Connection {
    fn progressed(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE);
    }

    /// After a pending read or write: an error once idle for too long.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is pending; ready when nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                    self.progressed();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.check_idle(cx),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// hyper's parse-error answers are replaced by JSON ones: the bytes
    /// count as written, the replacement goes out instead.
    fn replace(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let answer = json_for_parse_error(data)?;
        self.pending = answer;
        Some(match self.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(data.len())),
        })
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check_idle(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.drain(cx))?;
        if let Some(r) = this.replace(cx, data) {
            return r;
        }
        match Pin::new(&mut this.stream).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check_idle(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.drain(cx))?;
        if let Some(first) = bufs.first()
            && json_for_parse_error(first).is_some()
        {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(r) = this.replace(cx, &all) {
                return r;
            }
        }
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check_idle(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_parse_error_answers_become_json() {
        let canned = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(json_for_parse_error(canned).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 431);
        for status in ["400 Bad Request", "414 URI Too Long"] {
            let canned = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            assert!(
                json_for_parse_error(canned.as_bytes()).is_some(),
                "{status}"
            );
        }
        // The element's own answers are left alone: they have a body, or
        // another status.
        for ours in [
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(json_for_parse_error(ours.as_bytes()).is_none(), "{ours}");
        }
    }
}
