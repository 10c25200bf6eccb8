// SPDX-License-Identifier: MPL-2.0
//! The router over a real listener, without a pipeline: an empty stream,
//! a web root and a stand-in periodicclipper with a token.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::hls::index::LiveIndex;
use crate::hls::service::Limits;

#[derive(Default)]
struct FakeClipper {
    periodic: Mutex<Option<u32>>,
}

impl Clipper for FakeClipper {
    fn name(&self) -> String {
        "clipper".into()
    }
    fn start_periodic(&self, seconds: u32) -> bool {
        *self.periodic.lock().unwrap() = Some(seconds);
        true
    }
    fn stop_periodic(&self) {
        *self.periodic.lock().unwrap() = None;
    }
    fn clip_now(&self) -> Option<String> {
        None
    }
    fn wait_ready(&self, _: &str, _: Duration) -> Option<ClipReady> {
        None
    }
}

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The JSON error body, checked against the status.
    fn error(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "{}",
            self.head
        );
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        assert_eq!(v["status"], self.status, "{v}");
        assert!(v["error"].as_str().unwrap().len() > 10, "{v}");
        v
    }
}

/// One request over its own connection (`connection: close`).
fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = format!("{method} {target} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes())
}

fn get(addr: SocketAddr, target: &str) -> Answer {
    send(addr, "GET", target, &[])
}

#[test]
fn routes_answer_json_errors_cors_and_static_files() {
    let stream_dir = tempfile::tempdir().unwrap();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html>page").unwrap();
    std::fs::write(web.path().join("app.js"), "console.log('liveclip');").unwrap();
    std::fs::write(web.path().join(".hidden"), "secret").unwrap();
    std::fs::create_dir(web.path().join("sub")).unwrap();
    std::fs::write(web.path().join("sub/index.html"), "sub").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let service = ClipService::new(
        stream_dir.path().to_path_buf(),
        Arc::new(LiveIndex::default()),
        Limits::default(),
    );
    let stream = register(
        &address,
        None,
        Endpoint::Stream {
            stream_id: "cam".into(),
            service,
            web_root: Some(web.path().to_path_buf()),
        },
    )
    .unwrap();
    let fake = Arc::new(FakeClipper::default());
    let clipper = register(
        &address,
        Some("s3cret".into()),
        Endpoint::Clipper {
            name: "clipper".into(),
            clipper: fake.clone(),
        },
    )
    .unwrap();
    let addr = stream.bound;

    // The index, and the web page for a browser.
    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    let index: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        index,
        serde_json::json!({ "streams": ["cam"], "clippers": ["clipper"] })
    );
    let r = send(addr, "GET", "/", &[("accept", "text/html")]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("ui/"));

    // CORS: every answer, and the preflight on any path.
    let r = get(addr, "/cam/sessions");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in ["preview-start-seconds", "stream-media-id", "content-range"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    let r = send(addr, "OPTIONS", "/cam/manifest/video.m3u8", &[]);
    assert_eq!(r.status, 204, "{}", r.head);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let methods = r.header("access-control-allow-methods").unwrap();
    for m in ["GET", "HEAD", "POST", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = r.header("access-control-allow-headers").unwrap();
    for h in ["authorization", "range", "content-type"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert_eq!(r.header("access-control-max-age").as_deref(), Some("600"));

    // Errors are JSON, CORS included.
    let long = format!("/cam/clip.mp4?time={}", "1".repeat(5000));
    for (method, target, status) in [
        ("POST", "/", 405),
        ("POST", "/cam/sessions", 405),
        ("POST", "/cam/mp4", 405),
        ("DELETE", "/cam/periodic-recording", 405),
        ("GET", "/cam/mp4", 404),
        ("GET", "/cam/nothing/here", 404),
        ("GET", "/cam/manifest/other.m3u8", 404),
        ("GET", "/cam/", 404),
        ("GET", "/cam", 404),
        ("GET", "/nope/sessions", 404),
        ("GET", "/nope.m3u8", 404),
        ("GET", "//cam", 404),
        ("GET", "/%FF/sessions", 400),
        ("GET", "/cam/%C3%28", 400),
        ("GET", "/ui/%FF", 400),
        ("GET", long.as_str(), 414),
    ] {
        let r = send(addr, method, target, &[]);
        assert_eq!(r.status, status, "{method} {target}: {}", r.head);
        r.error();
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some("*")
        );
    }
    assert_eq!(get(addr, "/%FF/sessions").error()["kind"], "bad-request");

    // periodicclipper: the token, its routes, its 404 for anything else.
    let r = send(addr, "POST", "/clipper/mp4", &[]);
    assert_eq!(r.status, 401);
    r.error();
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    let bearer = [("authorization", "Bearer s3cret")];
    let r = send(addr, "POST", "/clipper/periodic-recording/5", &bearer);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(*fake.periodic.lock().unwrap(), Some(5));
    let r = send(
        addr,
        "DELETE",
        "/clipper/periodic-recording?token=s3cret",
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(*fake.periodic.lock().unwrap(), None);
    for (method, target, status) in [
        ("POST", "/clipper/periodic-recording/soon", 400),
        ("POST", "/clipper/periodic-recording/0", 400),
        ("POST", "/clipper/mp4?returnFile=maybe", 400),
        ("POST", "/clipper/mp4", 503),
        ("GET", "/clipper/mp4", 404),
        ("GET", "/clipper/sessions", 404),
        ("GET", "/clipper/manifest/video.m3u8", 404),
        ("GET", "/clipper/periodic-recording/5", 404),
        ("GET", "/clipper", 404),
    ] {
        let r = send(addr, method, target, &bearer);
        assert_eq!(r.status, status, "{method} {target}: {}", r.head);
        let e = r.error();
        if status == 404 {
            let reason = e["error"].as_str().unwrap();
            assert!(reason.contains("periodic-recording"), "{target}: {reason}");
        }
    }

    // The web page's files.
    let r = get(addr, "/ui/");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, b"<!doctype html>page");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let etag = r.header("etag").expect("an ETag");
    assert!(r.header("last-modified").is_some());
    let r = send(addr, "GET", "/ui/", &[("if-none-match", &etag)]);
    assert_eq!(r.status, 304);
    let r = send(addr, "GET", "/ui/app.js", &[("range", "bytes=0-6")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"console");
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 0-6/24"));
    let r = send(addr, "GET", "/ui/app.js", &[("range", "bytes=99-")]);
    assert_eq!(r.status, 416);
    r.error();
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */24"));
    assert_eq!(get(addr, "/ui/sub").body, b"sub");
    assert_eq!(get(addr, "/ui/sub/").body, b"sub");
    for (method, target, status) in [
        ("GET", "/ui/.hidden", 404),
        ("GET", "/ui/%2Ehidden", 404),
        ("GET", "/ui/..%2F..%2Fetc%2Fpasswd", 404),
        ("GET", "/ui/missing.js", 404),
        ("POST", "/ui/", 405),
    ] {
        let r = send(addr, method, target, &[]);
        assert_eq!(r.status, status, "{method} {target}: {}", r.head);
        r.error();
    }

    drop(clipper);
    drop(stream);
    assert!(TcpStream::connect(addr).is_err(), "the listener closed");
}

/// A listener with one empty stream `cam`.
fn bare_server() -> (Registration, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let service = ClipService::new(
        dir.path().to_path_buf(),
        Arc::new(LiveIndex::default()),
        Limits::default(),
    );
    let endpoint = Endpoint::Stream {
        stream_id: "cam".into(),
        service,
        web_root: None,
    };
    // A port of its own (the registry shares a listener per address).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = register(&format!("127.0.0.1:{port}"), None, endpoint).unwrap();
    let addr = r.bound;
    (r, addr, dir)
}

/// Sends `bytes` as they are and reads the answer up to the close.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(bytes).unwrap();
    let mut data = Vec::new();
    let _ = c.read_to_end(&mut data);
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&data)));
    let head = String::from_utf8(data[..end].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head,
        body: data[end + 4..].to_vec(),
    }
}

#[test]
fn requests_http_cannot_parse_get_json_errors() {
    let (_server, addr, _dir) = bare_server();
    // A 100 KB request target.
    let long = format!(
        "GET /cam/{} HTTP/1.1\r\nhost: t\r\n\r\n",
        "a".repeat(100_000)
    );
    let r = raw(addr, long.as_bytes());
    assert_eq!(r.status, 414, "{}", r.head);
    r.error();
    // Not HTTP at all.
    let r = raw(addr, b"GARBAGE GARBAGE\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.head);
    r.error();
    // More header fields than a request may have.
    let mut many = String::from("GET /cam/sessions HTTP/1.1\r\nhost: t\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let r = raw(addr, many.as_bytes());
    assert_eq!(r.status, 431, "{}", r.head);
    r.error();
    // A target just within the limit the routes check gets their 414.
    let r = get(addr, &format!("/cam/{}", "a".repeat(5_000)));
    assert_eq!(r.status, 414, "{}", r.head);
    r.error();
}

/// Clients that trickle a header line now and then are cut off after the
/// header timeout, and one address cannot take every connection: past its
/// share it is answered 503 at once, while another client is served.
#[test]
fn slow_clients_are_cut_off_and_cannot_take_every_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_server, addr, _dir) = bare_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let connect = |ip: &str| {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            async move {
                let s = tokio::net::TcpSocket::new_v4().unwrap();
                s.bind(SocketAddr::new(ip, 0)).unwrap();
                s.connect(addr).await.unwrap()
            }
        };
        let started = tokio::time::Instant::now();
        let mut slow = Vec::new();
        for _ in 0..listener::PER_CLIENT {
            let mut c = connect("127.0.0.2").await;
            c.write_all(b"GET /cam/sessions HTTP/1.1\r\n")
                .await
                .unwrap();
            slow.push(c);
        }
        // Past its share, the same address is refused at once.
        for _ in 0..8 {
            let mut c = connect("127.0.0.2").await;
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer))
                .await
                .expect("refused at once")
                .unwrap();
            let text = String::from_utf8_lossy(&answer);
            assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
            let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["kind"], "busy");
        }
        // Another client is served meanwhile.
        let mut c = connect("127.0.0.1").await;
        c.write_all(b"GET /cam/sessions HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer))
            .await
            .expect("served")
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200 "));
        // The slow ones trickle a header line every 2 s: the header
        // timeout ends them all the same.
        let mut closed = vec![false; slow.len()];
        while closed.iter().any(|c| !c) {
            assert!(
                started.elapsed() < listener::HEADER_TIMEOUT + Duration::from_secs(5),
                "{} of {} slow clients still connected",
                closed.iter().filter(|c| !**c).count(),
                closed.len()
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            for (c, done) in slow.iter_mut().zip(closed.iter_mut()) {
                if *done {
                    continue;
                }
                let mut buf = [0u8; 256];
                let gone =
                    match tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => true,
                        Ok(Ok(_)) => true,
                        Err(_) => c.write_all(b"x-slow: 1\r\n").await.is_err(),
                    };
                *done = gone;
            }
        }
        assert!(started.elapsed() >= listener::HEADER_TIMEOUT - Duration::from_secs(1));
    });
}

/// The query rules and the method check, on every route.
#[test]
fn every_route_applies_the_query_rules_and_its_methods() {
    let (_server, addr, _dir) = bare_server();
    let _clipper = register(
        &addr.to_string(),
        None,
        Endpoint::Clipper {
            name: "clipper".into(),
            clipper: Arc::new(FakeClipper::default()),
        },
    )
    .unwrap();
    let routes = [
        ("GET", "/cam/clip.mp4", "time=1s&duration=1s"),
        ("GET", "/cam/manifest/clip.m3u8", "time=1s&duration=1s"),
        ("GET", "/cam.m3u8", "time=1s&duration=1s"),
        ("GET", "/cam/manifest/video.m3u8", "duration=1s"),
        ("GET", "/cam/thumbnails/thumbnail.jpg", "time=1s&width=64"),
        ("GET", "/cam/sessions", "token=x"),
        ("GET", "/cam/init.mp4", "token=x"),
        ("POST", "/clipper/mp4", "returnFile=false"),
        ("POST", "/clipper/periodic-recording/5", "token=x"),
        ("DELETE", "/clipper/periodic-recording", "token=x"),
    ];
    for (method, path, good) in routes {
        let name = good.split('=').next().unwrap();
        let value = good.split(['=', '&']).nth(1).unwrap();
        for (query, why) in [
            (format!("{good}&{name}={value}"), "twice"),
            (format!("{name}=%20{value}"), "whitespace"),
            (format!("{name}=+{value}"), "whitespace"),
            (format!("{name}={}", "1".repeat(300)), "longer than"),
            (format!("{good}&bogus=1"), "unknown parameter"),
        ] {
            let r = send(addr, method, &format!("{path}?{query}"), &[]);
            assert_eq!(r.status, 400, "{method} {path}?{query}: {}", r.head);
            let e = r.error();
            assert!(
                e["error"].as_str().unwrap().contains(why),
                "{method} {path}?{query}: {e}"
            );
        }
    }
    for method in ["DELETE", "TRACE", "PUT", "PATCH"] {
        let r = send(addr, method, "/", &[]);
        assert_eq!(r.status, 405, "{method} /: {}", r.head);
        r.error();
        let r = send(addr, method, "/cam/clip.mp4?time=1s&duration=1s", &[]);
        assert_eq!(r.status, 405, "{method} /cam/clip.mp4: {}", r.head);
        r.error();
    }
}

#[test]
fn http_threads_block_sigpipe() {
    let blocked = || {
        // SAFETY: reading the calling thread's signal mask.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
            libc::sigismember(&old, libc::SIGPIPE) == 1
        }
    };
    let before = std::thread::spawn(blocked).join().unwrap();
    let after = std::thread::spawn(move || {
        block_sigpipe();
        blocked()
    })
    .join()
    .unwrap();
    assert!(!before && after);
}
