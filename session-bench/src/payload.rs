//! The session every contender stores: a few string keys, nested objects, an integer.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value as Json, json};
use session_core::{Codec, Data, MessagePack};

/// Key the read-write cycle changes (an integer).
pub(crate) const COUNTER: &str = "counter";

/// The JSON object of session `i`, with enough cart items for its MessagePack encoding to reach
/// `target` bytes. Strings depend on `i`, so no two sessions share their bytes.
pub(crate) fn object(i: usize, target: usize) -> Map<String, Json> {
    build(i, items_for(target))
}

/// How many cart items make session 0 reach `target` bytes (computed once per size).
fn items_for(target: usize) -> usize {
    static KNOWN: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    let mut known = KNOWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&(_, n)) = known.iter().find(|(t, _)| *t == target) {
        return n;
    }
    // Grow in big steps, then settle by halving the step.
    let (mut n, mut step) = (0, 64);
    while step > 0 {
        while encoded_len(&build(0, n)) < target {
            n += step;
        }
        n = n.saturating_sub(step);
        step /= 2;
    }
    while encoded_len(&build(0, n)) < target {
        n += 1;
    }
    known.push((target, n));
    n
}

fn item(i: usize, k: usize) -> Json {
    json!({
        "sku": format!("SKU-{:05}-{k}", (i * 31 + k) % 100_000),
        "name": "Assam tea, loose leaf, 250 g",
        "qty": k % 5 + 1,
        "price_cents": 1299 + k as u64,
    })
}

fn build(i: usize, items: usize) -> Map<String, Json> {
    let items: Vec<Json> = (0..items).map(|k| item(i, k)).collect();
    let json = json!({
        "user_id": 100_000 + i as u64,
        "user": format!("user-{i:07}@example.com"),
        "csrf": format!("{:0>43}", format!("t{i:x}Qz8LrV3kP0sWm")),
        "locale": "en-GB",
        "flash": "Your changes were saved.",
        "prefs": { "theme": "dark", "page_size": 50, "beta": i.is_multiple_of(2) },
        "cart": { "currency": "GBP", "coupon": null, "items": items },
        COUNTER: 0,
    });
    let Json::Object(map) = json else {
        return Map::new();
    };
    map
}

fn encoded_len(obj: &Map<String, Json>) -> usize {
    MessagePack.encode(&data(obj)).map_or(0, |b| b.len())
}

/// The object as our [`Data`] (each value encoded separately, as the store keeps it).
pub(crate) fn data(obj: &Map<String, Json>) -> Data {
    let mut data = Data::new();
    for (k, v) in obj {
        // A serde_json::Value always encodes.
        let _ = data.insert(k.clone(), v);
    }
    data
}

/// The object as tower-sessions' data map.
pub(crate) fn ts_data(obj: &Map<String, Json>) -> HashMap<String, Json> {
    obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The bytes the floor contenders move: what our default codec stores for this session.
pub(crate) fn bytes(obj: &Map<String, Json>) -> Vec<u8> {
    MessagePack.encode(&data(obj)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_reach_their_target_without_overshooting_much() {
        for target in [1024, 16 * 1024, 64 * 1024] {
            let len = bytes(&object(7, target)).len();
            assert!(
                (target..target + target / 8 + 128).contains(&len),
                "{target} -> {len}"
            );
        }
    }

    #[test]
    fn sessions_differ() {
        assert_ne!(bytes(&object(1, 1024)), bytes(&object(2, 1024)));
    }
}
