// SPDX-License-Identifier: MPL-2.0
//! The HTTP face of the elements (off unless `http-address` is set).
//!
//! Elements of one process that name the same address share one listener:
//! a process-wide registry keeps one server per address, each element
//! registers its routes (a stream of hlsclipsink, a periodicclipper by
//! name) and the server stops when the last registration is dropped. Each
//! server runs axum on its own tokio runtime and threads; nothing here runs
//! on a streaming thread.
//!
//! Routing is axum's. Streams and clippers come and go while the server
//! runs, so the `router` has one route per path *shape*
//! (`/{id}/clip.mp4`, `/{id}/manifest/video.m3u8`,
//! `/{id}/periodic-recording/{seconds}`, …) and the `Target` extractor
//! looks `{id}` up in the registry: a periodicclipper by name first, then a
//! stream by its stream-id, then a session of one of the streams (that may
//! read the disk, so it runs on the blocking pool). It also checks the
//! element's token. Every error, an unknown path or a wrong method
//! included, is JSON (`error`). tower-http does CORS (`CorsLayer`) and
//! serves the web page's files at `/ui/` (`ServeDir`).
//!
//! Clip cutting runs on tokio's blocking pool under the stream's clip
//! permits (the same ones the action signals take), and MP4 bodies are
//! streamed from the mapped fragments without a copy.

mod clipper;
mod hls;
mod images;
mod listener;
#[cfg(test)]
mod tests;
pub mod webhook;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, delete, get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;

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
    /// The files served at `/ui/`, and the stream that provided them.
    web_root: Option<(String, ServeDir)>,
}

/// A listener's registry, the state of its handlers.
type Shared = Arc<RwLock<Routes>>;

struct Server {
    routes: Shared,
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
                if routes.web_root.is_none() {
                    // A directory's index.html is served at its path as it
                    // is, without a redirect to an absolute path, so that
                    // the page works behind a proxy that moves it.
                    let files = ServeDir::new(root).redirect_to_trailing_slash(false);
                    routes.web_root = Some((stream_id.clone(), files));
                }
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
        .on_thread_start(block_sigpipe)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    let routes = Shared::default();
    let app = router(routes.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("liveclip-http".into())
        .spawn(move || {
            block_sigpipe();
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                listener::serve(listener, app, rx).await;
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

/// Blocks SIGPIPE in the calling thread. A write to a socket whose peer
/// is gone raises SIGPIPE, which ends the process unless it is ignored:
/// GStreamer applications (gst-launch-1.0 among them) don't ignore it, and
/// `writev`, which hyper uses for responses, cannot pass `MSG_NOSIGNAL`.
/// Blocked, the signal stays pending on the thread (harmless) and the
/// write fails with `EPIPE`, which ends that connection only. Every
/// thread of the HTTP server and the webhook client calls this.
pub(crate) fn block_sigpipe() {
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, and
    // pthread_sigmask only changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A listener's routes. `{id}` is whatever [`Target`] finds: the routes of
/// streams and clippers share their shapes, and each handler answers for
/// the kind it serves (a clipper's name on a stream route gets the
/// clipper's 404, a stream on a clipper route a 405).
fn router(routes: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(index)
                .fallback(|| async { error(405, "method-not-allowed", "/ answers GET and HEAD") }),
        )
        // `/{id}.m3u8`: a clip manifest.
        .route("/{id}", any(by_name))
        .route("/{id}/sessions", get(hls::sessions))
        .route("/{id}/markers", get(hls::markers).post(hls::add_marker))
        .route(
            "/{id}/exports",
            get(hls::export_profiles).post(hls::start_export),
        )
        .route("/{id}/exports/{n}", get(hls::export_status))
        .route("/{id}/exports/{n}/clip.mp4", get(hls::export_file))
        .route("/{id}/clip.mp4", get(hls::clip_mp4))
        .route("/{id}/manifest/video.m3u8", get(hls::video))
        .route("/{id}/manifest/clip.m3u8", get(hls::clip_manifest))
        .route("/{id}/thumbnails/{file}", get(images::thumbnail))
        .route("/{id}/animated.gif", get(images::animated_gif))
        .route("/{id}/animated.mp4", get(images::animated_mp4))
        .route("/{id}/animated.webp", get(images::animated_webp))
        .route("/{id}/storyboard.vtt", get(images::storyboard_vtt))
        .route("/{id}/storyboard.json", get(images::storyboard_json))
        .route("/{id}/storyboard.jpg", get(images::storyboard_jpg))
        // Any other path below an id: a session's media file, or a 404.
        .route("/{id}/{*file}", get(hls::media_file))
        .route("/{id}/mp4", post(clipper::mp4))
        .route("/{id}/periodic-recording", delete(clipper::stop_periodic))
        .route(
            "/{id}/periodic-recording/{seconds}",
            post(clipper::start_periodic),
        )
        .method_not_allowed_fallback(unrouted)
        .route_layer(middleware::from_fn(known_parameters))
        .nest_service(
            "/ui",
            get(ui)
                .fallback(|| async {
                    error(
                        405,
                        "method-not-allowed",
                        "static files answer GET and HEAD",
                    )
                })
                .with_state(routes.clone()),
        )
        .fallback(|uri: Uri| async move { no_route(&uri) })
        .layer(middleware::from_fn(limits))
        .layer(cors())
        .layer(middleware::from_fn(preflight_no_content))
        .with_state(routes)
}

/// CORS for every answer: a player on another origin may read the preview
/// headers and byte ranges.
fn cors() -> CorsLayer {
    let expose = [
        "preview-start-seconds",
        "stream-media-id",
        "clip-start-seconds",
        "clip-duration-seconds",
        "clip-preroll-seconds",
        "thumbnail-time-seconds",
        "content-length",
        "content-range",
        "content-disposition",
    ]
    .map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::RANGE, header::CONTENT_TYPE])
        .expose_headers(expose)
        .max_age(Duration::from_secs(600))
}

/// Preflights (answered by [`CorsLayer`], with 200) answer 204: they have
/// no content.
async fn preflight_no_content(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut r = next.run(req).await;
    if preflight && r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::NO_CONTENT;
    }
    r
}

/// Longest request target accepted.
const MAX_URI: usize = 4096;

/// What every request target must be before a handler sees it: at most
/// [`MAX_URI`] long (414), a path that percent-decodes to UTF-8 and a query
/// under [`crate::core::query`]'s rules (400).
async fn limits(req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > MAX_URI {
        return error(414, "bad-request", "the request target is too long");
    }
    if percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8()
        .is_err()
    {
        return error(400, "bad-request", "the path is not UTF-8");
    }
    if let Err(e) = crate::core::query::pairs(req.uri().query().unwrap_or("")) {
        return error(400, "bad-request", &e);
    }
    next.run(req).await
}

/// The query parameters each route takes; any other is refused (400),
/// before the route does anything.
async fn known_parameters(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let clip_manifest = route == "/{id}" && req.uri().path().ends_with(".m3u8");
    let known: &[&str] = match route.as_str() {
        "/{id}/clip.mp4" | "/{id}/manifest/clip.m3u8" | "/{id}/exports" => {
            crate::hls::clip::ClipRequest::PARAMS
        }
        _ if clip_manifest => crate::hls::clip::ClipRequest::PARAMS,
        "/{id}/manifest/video.m3u8" => &[
            "duration",
            "rendition",
            "height",
            "_HLS_msn",
            "_HLS_part",
            "token",
        ],
        "/{id}/mp4" => &["returnFile", "token"],
        "/{id}/thumbnails/{file}" => crate::hls::still::StillRequest::params(true),
        "/{id}/animated.gif" | "/{id}/animated.mp4" | "/{id}/animated.webp" => {
            crate::frames::animated::AnimatedRequest::PARAMS
        }
        _ => &["token"],
    };
    if let Err(e) = crate::core::query::known_pairs(req.uri().query().unwrap_or(""), known) {
        return error(400, "bad-request", &e);
    }
    next.run(req).await
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

/// 404 for a path that no route of its target answers.
pub(crate) fn no_route(uri: &Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    error(
        404,
        "not-found",
        &format!("no route {path}; see docs/http-api.md"),
    )
}

/// 405 for a stream or session route asked with another method.
pub(crate) fn stream_method() -> Response {
    error(
        405,
        "method-not-allowed",
        "stream and session routes answer GET and HEAD",
    )
}

/// The value of a query parameter.
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// [`Path`] parameters (percent-decoded), rejected as a JSON error.
pub(crate) struct Params<T>(pub T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(Params(t)),
            Err(e) if e.status() == StatusCode::BAD_REQUEST => {
                Err(error(400, "bad-request", &e.body_text()))
            }
            Err(e) => Err(error(e.status().as_u16(), "internal", &e.body_text())),
        }
    }
}

/// The token a request carries: an `Authorization: Bearer` header, else a
/// `token` parameter.
pub(crate) struct Token(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        Ok(Token(bearer.or_else(|| {
            param(parts.uri.query().unwrap_or(""), "token")
        })))
    }
}

impl Token {
    /// Whether this is the `wanted` token (always, when none is wanted).
    fn grants(&self, wanted: &Option<String>) -> bool {
        match wanted {
            None => true,
            Some(t) => self.0.as_deref().is_some_and(|given| same_token(given, t)),
        }
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

/// What the path's `{id}` names, its token checked: 404 when nothing on
/// the listener has that name, 401 without the element's token.
pub(crate) enum Target {
    Clipper(Arc<dyn Clipper>),
    Stream {
        service: Arc<ClipService>,
        /// The session named, or `None` for the stream itself (its live or
        /// newest session).
        media: Option<String>,
    },
}

#[derive(serde::Deserialize)]
struct IdParam {
    id: String,
}

impl FromRequestParts<Shared> for Target {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, routes: &Shared) -> Result<Self, Response> {
        let Params(IdParam { id }) = Params::from_request_parts(parts, routes).await?;
        let Ok(token) = Token::from_request_parts(parts, routes).await;
        Target::find(routes, &id, &id, &token).await
    }
}

impl Target {
    /// The clipper `name`, else the stream or session `id`.
    async fn find(routes: &Shared, name: &str, id: &str, token: &Token) -> Result<Self, Response> {
        let clipper = routes
            .read()
            .unwrap()
            .clippers
            .get(name)
            .map(|c| (c.clipper.clone(), c.token.clone()));
        if let Some((clipper, wanted)) = clipper {
            if !token.grants(&wanted) {
                return Err(unauthorized());
            }
            return Ok(Target::Clipper(clipper));
        }
        // A stream id is a map lookup; a media id may need the disk (the
        // sessions' files): that runs on the blocking pool, not on the
        // runtime's threads.
        let found = match find_stream(routes, id, false) {
            Some(f) => Some(f),
            None => {
                let (routes, id) = (routes.clone(), id.to_string());
                tokio::task::spawn_blocking(move || find_stream(&routes, &id, true))
                    .await
                    .ok()
                    .flatten()
            }
        };
        let Some((target, wanted)) = found else {
            return Err(error(
                404,
                "not-found",
                &format!("no stream, session or clipper named {id:?} here"),
            ));
        };
        if !token.grants(&wanted) {
            return Err(unauthorized());
        }
        Ok(target)
    }
}

/// The stream that `id` names, or the stream a session `id` belongs to
/// (only with `sessions`: that may read the disk); with the stream's token.
fn find_stream(routes: &Shared, id: &str, sessions: bool) -> Option<(Target, Option<String>)> {
    let routes = routes.read().unwrap();
    let target = |r: &StreamRoute, media: Option<String>| {
        let service = r.service.clone();
        (Target::Stream { service, media }, r.token.clone())
    };
    if let Some(r) = routes.streams.get(id) {
        return Some(target(r, None));
    }
    if !sessions {
        return None;
    }
    routes
        .streams
        .values()
        .find(|r| r.service.knows(id))
        .map(|r| target(r, Some(id.to_string())))
}

/// A [`Target`] that is a stream or session (hlsclipsink's routes); a
/// clipper's name gets the clipper's 404.
pub(crate) struct StreamTarget {
    pub service: Arc<ClipService>,
    pub media: Option<String>,
}

impl FromRequestParts<Shared> for StreamTarget {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, routes: &Shared) -> Result<Self, Response> {
        match Target::from_request_parts(parts, routes).await? {
            Target::Stream { service, media } => Ok(StreamTarget { service, media }),
            Target::Clipper(c) => Err(clipper::not_found(&c.name())),
        }
    }
}

/// A [`Target`] that is a periodicclipper; a stream or session gets 405
/// (these routes' methods are not GET or HEAD).
pub(crate) struct ClipperTarget(pub Arc<dyn Clipper>);

impl FromRequestParts<Shared> for ClipperTarget {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, routes: &Shared) -> Result<Self, Response> {
        match Target::from_request_parts(parts, routes).await? {
            Target::Clipper(c) => Ok(ClipperTarget(c)),
            Target::Stream { .. } => Err(stream_method()),
        }
    }
}

fn is_get(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// A path or method that the target has no route for: the clipper's 404,
/// 405 on a stream or session for a method other than GET and HEAD, else
/// 404.
async fn unrouted(target: Target, method: Method, uri: Uri) -> Response {
    match target {
        Target::Clipper(c) => clipper::not_found(&c.name()),
        Target::Stream { .. } if !is_get(&method) => stream_method(),
        Target::Stream { .. } => no_route(&uri),
    }
}

/// `/{id}`: `/{id}.m3u8` is the clip manifest of a stream or session
/// (FastPix style); other names answer as [`unrouted`].
async fn by_name(
    State(routes): State<Shared>,
    Params(name): Params<String>,
    token: Token,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let id = name.strip_suffix(".m3u8");
    let target = match Target::find(&routes, &name, id.unwrap_or(&name), &token).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match target {
        Target::Stream { service, media } if id.is_some() && is_get(&method) => {
            let target = StreamTarget { service, media };
            hls::manifest(target, &query.unwrap_or_default(), "", &name).await
        }
        target => unrouted(target, method, uri).await,
    }
}

/// `GET /`: what this listener serves; a browser (a request accepting
/// `text/html`) is sent to the web page when there is one.
async fn index(State(routes): State<Shared>, headers: HeaderMap) -> Response {
    let routes = routes.read().unwrap();
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html && routes.web_root.is_some() {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, "ui/")
            .body(Body::empty())
            .expect("valid response");
    }
    let mut streams: Vec<_> = routes.streams.keys().cloned().collect();
    streams.sort();
    let mut clippers: Vec<_> = routes.clippers.keys().cloned().collect();
    clippers.sort();
    json(&serde_json::json!({ "streams": streams, "clippers": clippers }))
}

/// `GET /ui/…`: a file of the web root (`index.html` for a directory), by
/// tower-http's `ServeDir`: ranges, ETag and Last-Modified, and no path
/// out of the root. Hidden names are refused too.
async fn ui(State(routes): State<Shared>, req: Request) -> Response {
    let files = routes
        .read()
        .unwrap()
        .web_root
        .as_ref()
        .map(|(_, files)| files.clone());
    let Some(mut files) = files else {
        return error(
            404,
            "not-found",
            "no web page here (an hlsclipsink's http-web-root)",
        );
    };
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let missing = || error(404, "not-found", &format!("no file ui{path}"));
    if path.split('/').any(|s| s.starts_with('.')) {
        return missing();
    }
    match files.try_call(req).await {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => missing(),
        Ok(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE => {
            let mut e = error(
                416,
                "out-of-range",
                &format!("the range is outside the bytes of ui{path}"),
            );
            if let Some(v) = r.headers().get(header::CONTENT_RANGE) {
                e.headers_mut().insert(header::CONTENT_RANGE, v.clone());
            }
            e
        }
        Ok(mut r) => {
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r.map(Body::new)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotADirectory
            ) =>
        {
            missing()
        }
        Err(e) => error(500, "storage", &format!("ui{path}: {e}")),
    }
}
