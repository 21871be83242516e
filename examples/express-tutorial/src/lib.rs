#![doc = include_str!("../README.md")]

mod app;
mod cli;
mod key;
mod login;
mod page;
mod store;

pub use app::{SessionSettings, Tutorial, USERNAME, router, session_layer};
pub use cli::{KeySource, Options};
pub use key::load_or_create_key;
pub use login::Credentials;
pub use store::{DEFAULT_STORE, OpenedStore, StoreInfo, open_store, redact};
