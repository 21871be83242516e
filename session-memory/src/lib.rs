#![doc = include_str!("../README.md")]

mod index;
mod principals;
mod store;

pub use store::MemoryStore;

// The store is shared across tasks and used as `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
};
