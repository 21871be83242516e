#![doc = include_str!("../README.md")]

mod app;
mod cli;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod login;
mod page;
mod store;

pub use app::{
    SessionSettings, Signing, Tutorial, USER_AGENT, USERNAME, router, routes, session_layer,
};
pub use cli::{KeySource, Options};
pub use key::load_or_create_key;
pub use login::Credentials;
pub use store::{DEFAULT_STORE, OpenedStore, StoreInfo, open_express_store, open_store, redact};
