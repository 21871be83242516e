#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod cookie;
mod error;
#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod lifecycle;
mod locks;
mod meta;
mod persist;
mod principals;
mod proxy;
mod service;
mod session;
mod state;

pub use config::{Builder, MIN_KEY_LEN};
pub use cookie::{CookieSettings, Priority, SameSite};
pub use error::Error;
pub use meta::{RESERVED_KEY, TOMBSTONE_TTL};
pub use principals::SessionInfo;
pub use proxy::PeerAddr;
pub use service::{ResponseFuture, SessionLayer, SessionService};
pub use session::Session;

// Handles and layers cross threads and tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Session>();
    assert_send_sync::<SessionLayer>();
    assert_send_sync::<Builder>();
    assert_send_sync::<Error>();
};
