//! The session every contender stores: a few string keys, nested objects, an integer.

use std::collections::HashMap;

use serde_json::{Map, Value as Json, json};
use session_core::{Codec, Data, MessagePack};

/// Key the read-write cycle changes (an integer).
pub(crate) const COUNTER: &str = "counter";

/// The JSON object of session `i`, grown with cart items until its MessagePack encoding is at
/// least `target` bytes. Strings depend on `i`, so no two sessions share their bytes.
pub(crate) fn object(i: usize, target: usize) -> Map<String, Json> {
    let mut items = Vec::new();
    loop {
        let obj = build(i, &items);
        if encoded_len(&obj) >= target {
            return obj;
        }
        let k = items.len();
        // Grow faster for the large payloads so building them stays cheap.
        let step = (target / 2048).max(1);
        for j in 0..step {
            items.push(json!({
                "sku": format!("SKU-{:05}-{}", (i * 31 + k + j) % 100_000, k + j),
                "name": "Assam tea, loose leaf, 250 g",
                "qty": (k + j) % 5 + 1,
                "price_cents": 1299 + (k + j) as u64,
            }));
        }
    }
}

fn build(i: usize, items: &[Json]) -> Map<String, Json> {
    let json = json!({
        "user_id": 100_000 + i as u64,
        "user": format!("user-{i:07}@example.com"),
        "csrf": format!("{:0>43}", format!("t{i:x}Qz8LrV3kP0sWm")),
        "locale": "en-GB",
        "flash": "Your changes were saved.",
        "prefs": { "theme": "dark", "page_size": 50, "beta": i % 2 == 0 },
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
