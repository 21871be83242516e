//! The in-process load generator: HTTP/1.1 keep-alive connections on hyper, each carrying its
//! own session cookie.

use std::net::SocketAddr;

use async_trait::async_trait;
use axum::http::StatusCode;
use bytes::Bytes;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

use crate::harness::{Res, Subject, Workload};

pub(super) type Sender = SendRequest<Empty<Bytes>>;

/// A keep-alive connection to `addr`.
pub(super) async fn connect(addr: SocketAddr) -> Res<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// GETs `path` with `cookie`; any status but 200 is an error.
pub(super) async fn send(
    sender: &mut Sender,
    path: &str,
    cookie: Option<&HeaderValue>,
) -> Res<HeaderMap> {
    sender.ready().await?;
    let mut request = Request::get(path).header(HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = sender.send_request(request.body(Empty::new())?).await?;
    let (parts, body) = response.into_parts();
    body.collect().await?;
    if parts.status != StatusCode::OK {
        return Err(format!("{path} answered {}", parts.status).into());
    }
    Ok(parts.headers)
}

/// `GET /login` on `sender`: the `name=value` pair of the session cookie it sets, if any.
pub(super) async fn login(sender: &mut Sender) -> Res<Option<HeaderValue>> {
    let headers = send(sender, "/login", None).await?;
    let Some(set) = headers.get(SET_COOKIE) else {
        return Ok(None);
    };
    let pair = set.to_str()?.split(';').next().unwrap_or_default();
    Ok(Some(HeaderValue::from_str(pair)?))
}

/// One served app and a keep-alive connection (with its own session) per client task.
pub(super) struct Client {
    connections: Vec<Mutex<(Sender, Option<HeaderValue>)>>,
}

impl Client {
    /// Opens `n` connections to `addr`, each logged in to a session of its own when `sessions`.
    pub(super) async fn new(addr: SocketAddr, n: usize, sessions: bool) -> Res<Self> {
        let mut connections = Vec::with_capacity(n);
        for _ in 0..n {
            let mut sender = connect(addr).await?;
            let cookie = login(&mut sender).await?;
            if sessions && cookie.is_none() {
                return Err(format!("/login on {addr} set no cookie").into());
            }
            connections.push(Mutex::new((sender, cookie)));
        }
        Ok(Self { connections })
    }
}

#[async_trait]
impl Subject for Client {
    fn sessions(&self) -> usize {
        self.connections.len()
    }

    fn supports(&self, workload: Workload) -> bool {
        matches!(workload, Workload::HttpRead | Workload::HttpWrite)
    }

    async fn cycle(&self, workload: Workload, task: usize, _slot: usize, _n: u64) -> Res {
        let path = if workload == Workload::HttpRead {
            "/read"
        } else {
            "/write"
        };
        let mut guard = self.connections[task].lock().await;
        let (sender, cookie) = &mut *guard;
        send(sender, path, cookie.as_ref()).await?;
        Ok(())
    }
}
