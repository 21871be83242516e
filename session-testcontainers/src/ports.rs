//! Host ports for published container ports, chosen before the container is created so that a
//! URL stays valid across a stop and start (and Redis Cluster nodes can announce them).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Host ports are picked below Linux's ephemeral range (32768 and up), so that neither the
/// kernel (for outgoing connections) nor another "port 0" listener takes a port while its
/// container is stopped; Redis Cluster also needs `port + 10000` for its bus.
pub(crate) const HOST_PORTS: std::ops::Range<u16> = 15000..32000;

/// Ports handed out by this process and not yet released, so that two fixtures of one test
/// binary never pick the same port between the check and the container's start.
static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `count` distinct ports that are free on 127.0.0.1 now and not handed out by this process;
/// they stay reserved in this process until [`release`]d.
pub(crate) fn free(count: usize) -> std::io::Result<Vec<u16>> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut ports = Vec::with_capacity(count);
    let span = u64::from(HOST_PORTS.end - HOST_PORTS.start);
    for _ in 0..1000 {
        if ports.len() == count {
            break;
        }
        let offset = u16::try_from(random() % span).unwrap_or(0);
        let port = HOST_PORTS.start + offset;
        if taken.contains(&port) || ports.contains(&port) {
            continue;
        }
        // Free now; the container publishes it a moment later (a race the caller retries).
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free port in {HOST_PORTS:?} after 1000 tries"),
        ));
    }
    taken.extend(&ports);
    Ok(ports)
}

/// Gives ports handed out by [`free`] back.
pub(crate) fn release(ports: &[u16]) {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for port in ports {
        taken.remove(port);
    }
}

/// Random enough to keep concurrent test processes apart (a hash of the process id and a
/// counter under std's randomly keyed hasher: no dependency needed for that).
pub(crate) fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let ports = free(3).expect("three free ports");
        assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), 3, "{ports:?}");
        assert!(ports.iter().all(|p| HOST_PORTS.contains(p)), "{ports:?}");
        let again = free(3).expect("three more");
        assert!(
            again.iter().all(|p| !ports.contains(p)),
            "{ports:?} then {again:?}"
        );
        release(&ports);
        release(&again);
    }
}
