#![doc = include_str!("../README.md")]

mod cached;
mod index;
mod principals;
mod store;

pub use cached::CachedStore;
pub use store::MemoryStore;

// The stores are shared across tasks and used as `Arc<dyn Store>`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<CachedStore<MemoryStore>>();
};
