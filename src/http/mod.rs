// SPDX-License-Identifier: MPL-2.0
//! The HTTP face of the elements (off unless `http-address` is set).
//!
//! Elements of one process that name the same address share one listener:
//! a process-wide registry keeps one server per address, each element
//! registers its routes (a stream of hlsclipsink, a periodicclipper by
//! name) and the server stops when the last registration is dropped. Each
//! server runs axum on its own tokio runtime and threads; clip cutting runs
//! on tokio's blocking pool under the stream's clip permits (the same ones
//! the action signals take), and MP4 bodies are
//! streamed from the mapped fragments without a copy. Nothing here runs on
//! a streaming thread.

mod clipper;
mod hls;
mod listener;
pub mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

use crate::hls::clip::ClipError;
use crate::hls::service::ClipService;

pub use clipper::{ClipReady, Clipper};

/// What an element offers on a listener.
pub enum Endpoint {
    /// hlsclipsink: `/{stream-id}/…` and `/{media-id}/…` of its sessions.
    Stream {
        stream_id: String,
        service: Arc<ClipService>,
        /// A directory of static files served at `/ui/` (the web page).
        web_root: Option<std::path::PathBuf>,
    },
    /// periodicclipper: `/{name}/periodic-recording…` and `/{name}/mp4`.
    Clipper {
        name: String,
        clipper: Arc<dyn Clipper>,
    },
}

/// A stream's routes (its clip cutting is limited by the service's
/// permits, shared with the action signals).
struct StreamRoute {
    service: Arc<ClipService>,
    token: Option<String>,
}

struct ClipperRoute {
    clipper: Arc<dyn Clipper>,
    token: Option<String>,
}

#[derive(Default)]
struct Routes {
    streams: HashMap<String, StreamRoute>,
    clippers: HashMap<String, ClipperRoute>,
    /// Static files at `/ui/`, and the stream that provided them.
    web_root: Option<(String, std::path::PathBuf)>,
}

struct Server {
    routes: Arc<RwLock<Routes>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address actually bound (port 0 picks one).
    bound: SocketAddr,
}

static SERVERS: LazyLock<Mutex<HashMap<SocketAddr, Server>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An element's routes on a listener; dropping it removes them, and the
/// listener stops when nothing is left on it.
pub struct Registration {
    addr: SocketAddr,
    key: (bool, String),
    /// The address the listener is bound to.
    pub bound: SocketAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut servers = SERVERS.lock().unwrap();
        let Some(server) = servers.get_mut(&self.addr) else {
            return;
        };
        let empty = {
            let mut routes = server.routes.write().unwrap();
            if self.key.0 {
                routes.streams.remove(&self.key.1);
                if routes
                    .web_root
                    .as_ref()
                    .is_some_and(|(k, _)| *k == self.key.1)
                {
                    routes.web_root = None;
                }
            } else {
                routes.clippers.remove(&self.key.1);
            }
            routes.streams.is_empty() && routes.clippers.is_empty()
        };
        if empty && let Some(mut server) = servers.remove(&self.addr) {
            drop(servers);
            if let Some(tx) = server.shutdown.take() {
                let _ = tx.send(());
            }
            if let Some(t) = server.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Parses an `http-address` value (`127.0.0.1:8080`, `[::1]:8080`,
/// `localhost:8080`).
pub fn parse_address(address: &str) -> Result<SocketAddr, String> {
    let address = address.trim();
    if let Some(port) = address.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("http-address {address:?}: the port is not a number"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    address.parse().map_err(|_| {
        format!("http-address {address:?} is not an address and port such as 127.0.0.1:8080")
    })
}

/// Adds `endpoint` to the listener on `address`, starting it if needed.
pub fn register(
    address: &str,
    token: Option<String>,
    endpoint: Endpoint,
) -> Result<Registration, String> {
    let addr = parse_address(address)?;
    let mut servers = SERVERS.lock().unwrap();
    let server = match servers.entry(addr) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(start(addr)?),
    };
    let bound = server.bound;
    let mut routes = server.routes.write().unwrap();
    let key = match endpoint {
        Endpoint::Stream {
            stream_id,
            service,
            web_root,
        } => {
            if routes.streams.contains_key(&stream_id) {
                return Err(format!(
                    "stream {stream_id:?} is already served on {address}"
                ));
            }
            if let Some(root) = web_root {
                if !root.is_dir() {
                    return Err(format!(
                        "http-web-root {} is not a directory",
                        root.display()
                    ));
                }
                routes.web_root.get_or_insert((stream_id.clone(), root));
            }
            routes
                .streams
                .insert(stream_id.clone(), StreamRoute { service, token });
            (true, stream_id)
        }
        Endpoint::Clipper { name, clipper } => {
            if routes.clippers.contains_key(&name) {
                return Err(format!("{name:?} is already served on {address}"));
            }
            routes
                .clippers
                .insert(name.clone(), ClipperRoute { clipper, token });
            (false, name)
        }
    };
    Ok(Registration { addr, key, bound })
}

fn start(addr: SocketAddr) -> Result<Server, String> {
    // Bound here, so that an address in use is reported to the element.
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("liveclip-http")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    let routes = Arc::new(RwLock::new(Routes::default()));
    let state = routes.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("liveclip-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().fallback(handle).with_state(state);
                let _ = axum::serve(listener::Bounded::new(listener), app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
            // Slow clients still being served are cut off here.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok(Server {
        routes,
        shutdown: Some(tx),
        thread: Some(thread),
        bound,
    })
}

/// CORS for every answer: a player on another origin may read the preview
/// headers and byte ranges.
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "preview-start-seconds, stream-media-id, clip-start-seconds, clip-duration-seconds, clip-preroll-seconds, content-length, content-range, content-disposition",
        ),
    );
    r
}

/// A JSON error: `{"error": reason, "status": code, "kind": name}`.
pub(crate) fn error(status: u16, kind: &str, reason: &str) -> Response {
    let body = serde_json::json!({ "error": reason, "status": status, "kind": kind });
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

pub(crate) fn clip_error(e: &ClipError) -> Response {
    error(e.status(), e.kind(), &e.to_string())
}

pub(crate) fn json(value: &serde_json::Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(value.to_string()))
        .expect("valid response")
}

/// Longest request target accepted.
const MAX_URI: usize = 4096;

/// A request as the route handlers see it.
pub(crate) struct Request {
    pub method: Method,
    /// Decoded path segments.
    pub segments: Vec<String>,
    pub query: String,
    pub headers: HeaderMap,
}

impl Request {
    /// The value of a query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn token(&self) -> Option<String> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .or_else(|| self.param("token"))
    }
}

/// Compares without an early exit, so timing tells nothing of the token.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn authorized(req: &Request, token: &Option<String>) -> bool {
    match token {
        None => true,
        Some(t) => req.token().is_some_and(|given| same_token(&given, t)),
    }
}

async fn handle(
    axum::extract::State(routes): axum::extract::State<Arc<RwLock<Routes>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    cors(dispatch(&routes, method, uri, headers).await)
}

async fn dispatch(
    routes: &Arc<RwLock<Routes>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method == Method::OPTIONS {
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "GET, HEAD, POST, DELETE, OPTIONS",
            )
            .header(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, range, content-type",
            )
            .header(header::ACCESS_CONTROL_MAX_AGE, "600")
            .body(Body::empty())
            .expect("valid response");
    }
    if uri.to_string().len() > MAX_URI {
        return error(414, "bad-request", "the request target is too long");
    }
    let mut segments = Vec::new();
    for s in uri.path().split('/').filter(|s| !s.is_empty()) {
        match percent_encoding::percent_decode_str(s).decode_utf8() {
            Ok(d) => segments.push(d.into_owned()),
            Err(_) => return error(400, "bad-request", "the path is not UTF-8"),
        }
    }
    let req = Request {
        method,
        segments,
        query: uri.query().unwrap_or("").to_string(),
        headers,
    };
    let web_root = routes
        .read()
        .unwrap()
        .web_root
        .as_ref()
        .map(|(_, r)| r.clone());
    let Some(first) = req.segments.first().cloned() else {
        // A browser opening the server gets the web page, if there is one.
        let html = req
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if html && web_root.is_some() {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, "ui/")
                .body(Body::empty())
                .expect("valid response");
        }
        return index(routes);
    };
    if first == "ui"
        && let Some(root) = web_root
    {
        return static_file(&req, &root).await;
    }
    // periodicclipper routes.
    let clipper = routes
        .read()
        .unwrap()
        .clippers
        .get(&first)
        .map(|c| (c.clipper.clone(), c.token.clone()));
    if let Some((clipper, token)) = clipper {
        if !authorized(&req, &token) {
            return unauthorized();
        }
        return clipper::route(&req, clipper).await;
    }
    // hlsclipsink routes: `/{id}.m3u8`, `/{stream-id}/…`, `/{media-id}/…`.
    let id = match first.strip_suffix(".m3u8") {
        Some(id) if req.segments.len() == 1 => id.to_string(),
        _ => first.clone(),
    };
    // A stream id is a map lookup; a media id may need the disk (the
    // sessions' files): that runs on the blocking pool, not on the
    // runtime's threads.
    let target = match find_stream(routes, &id, false) {
        Some(t) => Some(t),
        None => {
            let (routes, id) = (routes.clone(), id.clone());
            tokio::task::spawn_blocking(move || find_stream(&routes, &id, true))
                .await
                .ok()
                .flatten()
        }
    };
    let Some((stream, route_id)) = target else {
        return error(
            404,
            "not-found",
            &format!("no stream, session or clipper named {id:?} here"),
        );
    };
    if !authorized(&req, &stream.token) {
        return unauthorized();
    }
    hls::route(&req, &stream, route_id).await
}

fn unauthorized() -> Response {
    let mut r = error(
        401,
        "unauthorized",
        "this server needs a token: an Authorization: Bearer header or a token= parameter",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// What a request addresses on a stream.
pub(crate) enum RouteId {
    /// The stream itself (its live or newest session).
    Stream,
    /// One of its sessions.
    Media(String),
}

/// A stream's route, copied out of the registry for one request.
pub(crate) struct StreamHandle {
    pub service: Arc<ClipService>,
    token: Option<String>,
}

/// The stream that `id` names, or the stream a session `id` belongs to
/// (only with `sessions`: that may read the disk).
fn find_stream(
    routes: &Arc<RwLock<Routes>>,
    id: &str,
    sessions: bool,
) -> Option<(StreamHandle, RouteId)> {
    let routes = routes.read().unwrap();
    let handle = |r: &StreamRoute| StreamHandle {
        service: r.service.clone(),
        token: r.token.clone(),
    };
    if let Some(r) = routes.streams.get(id) {
        return Some((handle(r), RouteId::Stream));
    }
    if !sessions {
        return None;
    }
    routes
        .streams
        .values()
        .find(|r| r.service.knows(id))
        .map(|r| (handle(r), RouteId::Media(id.to_string())))
}

/// Content type of a static file, by extension.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "vtt" => "text/vtt; charset=utf-8",
        "m3u8" => "application/vnd.apple.mpegurl",
        _ => "application/octet-stream",
    }
}

/// `GET /ui/…`: a file under the web root (`index.html` for a directory).
/// Hidden names and `..` are refused, so nothing outside the root is read.
async fn static_file(req: &Request, root: &std::path::Path) -> Response {
    if req.method != Method::GET && req.method != Method::HEAD {
        return error(
            405,
            "method-not-allowed",
            "static files answer GET and HEAD",
        );
    }
    let rest = &req.segments[1..];
    if rest
        .iter()
        .any(|s| s.starts_with('.') || s.contains('/') || s.contains('\\') || s.contains('\0'))
    {
        return error(404, "not-found", "no such file");
    }
    let mut path = root.to_path_buf();
    path.extend(rest);
    if rest.is_empty() || path.is_dir() {
        path.push("index.html");
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
    match read {
        Ok(Ok(data)) => {
            let range = req
                .headers
                .get(header::RANGE)
                .map(|v| v.to_str().unwrap_or("invalid"));
            let builder = Response::builder().header(header::CACHE_CONTROL, "no-cache");
            hls::ranged(data, content_type(&name), range, &name, builder)
        }
        _ => error(404, "not-found", &format!("no file ui/{}", rest.join("/"))),
    }
}

/// `GET /`: what this listener serves.
fn index(routes: &Arc<RwLock<Routes>>) -> Response {
    let routes = routes.read().unwrap();
    let mut streams: Vec<_> = routes.streams.keys().cloned().collect();
    streams.sort();
    let mut clippers: Vec<_> = routes.clippers.keys().cloned().collect();
    clippers.sort();
    json(&serde_json::json!({ "streams": streams, "clippers": clippers }))
}
