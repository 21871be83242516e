//! The tower `Layer` and `Service`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{Request, Response};
use session_core::Store;
use tower_layer::Layer;
use tower_service::Service;

use crate::Session;
use crate::config::{Builder, Config, Secure};
use crate::cookie::Incoming;

/// Adds a [`Session`] to every request and keeps it in a store; see the crate documentation.
///
/// Built with [`SessionLayer::builder`]. Cloning is cheap (the configuration is shared).
#[derive(Clone, Debug)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// Starts configuring a layer that keeps sessions in `store`.
    ///
    /// `store` may be any [`Store`], including an `Arc<dyn Store>` chosen at run time.
    pub fn builder(store: impl Store) -> Builder {
        Builder::new(Arc::new(store))
    }

    /// The store the layer keeps sessions in.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.config.store
    }

    pub(crate) fn from_config(config: Config) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service a [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

/// The response future of [`SessionService`].
pub struct ResponseFuture<B, E> {
    inner: Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>,
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        let incoming = config.keys.read(request.headers(), &config.name);
        if incoming == Incoming::Invalid {
            crate::lifecycle::rejected();
        }
        let secure = match config.secure {
            Secure::Always => true,
            Secure::Never => false,
            Secure::Auto => config.trusted_proxies.is_https(&request),
        };
        let cache_control = config.cache_control;
        let session = Session::new(config, incoming, secure);
        let shared = session.shared();
        request.extensions_mut().insert(session);
        // Nothing is awaited before the inner service runs, so it is called here, on the
        // service that was made ready, and its future (already `'static`) is awaited below:
        // no clone of the inner service per request.
        let inner = self.inner.call(request);
        ResponseFuture {
            inner: Box::pin(async move {
                let mut response = inner.await?;
                match shared.finish().await {
                    Ok(Some(cookie)) => {
                        let headers = response.headers_mut();
                        headers.append(SET_COOKIE, cookie);
                        // A cached copy would give this cookie to the next visitor.
                        if cache_control && !headers.contains_key(CACHE_CONTROL) {
                            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        }
                    }
                    Ok(None) => {}
                    // The handler's response would claim a success that was not kept.
                    Err(error) => {
                        error.log();
                        response = Response::new(ResBody::default());
                        *response.status_mut() = error.status();
                    }
                }
                Ok(response)
            }),
        }
    }
}
