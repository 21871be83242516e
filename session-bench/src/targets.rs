//! Every target the report checks, in one place: issue 15's table, and the first round's
//! targets it left standing. Ratios are ours / the other (above 1: ours is faster or cheaper).

use crate::args::Backend;
use crate::harness::Workload;
use crate::report::Bound::{self, AtLeast, AtMost};

/// Ours / the floor for a store workload, if that pair has a target.
pub(crate) fn store_vs_floor(backend: Backend, workload: Workload) -> Option<Bound> {
    use Backend::{Memory, Redis};
    use Workload::{Ro, Rw, Touch};
    match (backend, workload) {
        (Memory, Rw) => Some(AtLeast(0.6)),
        (Memory, Ro) => Some(AtLeast(0.5)),
        (Memory, Touch) => Some(AtLeast(0.8)),
        (Redis, Rw | Touch) => Some(AtLeast(0.85)),
        (_, Rw | Ro) => Some(AtLeast(0.7)),
        _ => None,
    }
}

/// Ours / tower-sessions' store on the same backend (rw and ro; tower-sessions has no touch).
pub(crate) const STORE_VS_TOWER_SESSIONS: Bound = AtLeast(1.0);

/// A store at the largest session count / itself at the smallest.
pub(crate) const LARGEST_COUNT_VS_SMALLEST: Bound = AtLeast(0.8);

/// Ours / the floor with 16 and 64 KiB sessions, Redis rw.
pub(crate) const REDIS_LARGE_SESSIONS: Bound = AtLeast(0.8);

/// The memory store's resident bytes per session / the encoded session.
pub(crate) const MEMORY_RESIDENT: Bound = AtMost(1.5);

/// The middleware with the memory store / bare axum, per handler.
pub(crate) fn middleware_vs_bare(workload: Workload) -> Bound {
    if workload == Workload::HttpRead {
        AtLeast(0.9)
    } else {
        AtLeast(0.75)
    }
}

/// The middleware / tower-sessions with the same kind of store, memory or Redis.
pub(crate) const MIDDLEWARE_VS_TOWER_SESSIONS: Bound = AtLeast(1.0);

/// The cache tier / the store it fronts, on loads it answers from memory (hits), Redis.
pub(crate) const CACHE_HIT_VS_STORE: Bound = AtLeast(10.0);
