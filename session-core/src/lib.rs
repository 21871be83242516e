#![doc = include_str!("../README.md")]

pub mod cleanup;
pub mod clock;
pub mod codec;
mod error;
pub mod express;
mod id;
mod record;
mod store;

pub use clock::{Clock, SystemClock};
pub use codec::{Codec, Json, MessagePack};
pub use error::{BoxError, DEFAULT_TIMEOUT, Error, Result, Timeout, check_timeout, timed};
pub use id::{Id, InvalidId};
pub use record::{
    Data, MAX_PRINCIPAL_LEN, MAX_VERSION, Record, Value, check_principal, check_version, now,
    truncate_to_millis,
};
pub use store::{DEFAULT_BATCH, ExpiredDeletion, Principals, Store};

// Public types stay usable across threads and in `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Id>();
    assert_send_sync::<Record>();
    assert_send_sync::<Data>();
    assert_send_sync::<Value>();
    assert_send_sync::<Error>();
    assert_send_sync::<std::sync::Arc<dyn Store>>();
    assert_send_sync::<cleanup::CleanupTask>();
};
