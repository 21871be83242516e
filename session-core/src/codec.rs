//! Encoding session data for storage.
//!
//! Two formats are built in, and every stored blob starts with a mark of its format and
//! version, so stored sessions stay readable when the default changes:
//!
//! | format | first byte | layout |
//! |---|---|---|
//! | [`MessagePack`] (default) | `0x01` (format version 1) | `0x01`, then one MessagePack map of string keys to values |
//! | [`Json`] | `{` | `{"v":1,"data":{...}}`, compact UTF-8 JSON |
//!
//! Both built-in codecs decode both formats, so switching a store from one to the other keeps
//! existing sessions readable. Decoding never panics: malformed, truncated or foreign bytes give
//! [`Error::Decode`].
//!
//! Values are held encoded (see [`Value`]): the MessagePack codec writes the bytes it already
//! has and, when decoding, only finds where each value ends, without building a tree.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::{Data, Error, Result, Value};

/// First byte of the MessagePack format, version 1.
pub const MSGPACK_V1: u8 = 0x01;

/// Turns [`Data`] into bytes for storage and back.
///
/// Implement it to store sessions in another format; the built-in [`MessagePack`] and [`Json`]
/// codecs cover most needs.
pub trait Codec: Send + Sync + fmt::Debug + 'static {
    /// Encodes `data`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if a value cannot be represented in this format.
    fn encode(&self, data: &Data) -> Result<Vec<u8>>;

    /// Decodes bytes produced by [`Codec::encode`].
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the bytes are not a valid encoding. Must never panic.
    fn decode(&self, bytes: Bytes) -> Result<Data>;
}

/// The default codec: a format-version byte, then a MessagePack map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagePack;

/// JSON codec: `{"v":1,"data":{...}}`, readable in any database console.
///
/// Slower than [`MessagePack`]: values are kept as MessagePack in memory and transcoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl Codec for MessagePack {
    fn encode(&self, data: &Data) -> Result<Vec<u8>> {
        let size = 6 + data
            .iter()
            .map(|(k, v)| k.len() + 5 + v.as_msgpack().len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.push(MSGPACK_V1);
        let len =
            u32::try_from(data.len()).map_err(|_| Error::encode(FormatError("too many keys")))?;
        rmp::encode::write_map_len(&mut out, len).map_err(Error::encode)?;
        for (key, value) in data.iter() {
            rmp::encode::write_str(&mut out, key).map_err(Error::encode)?;
            out.extend_from_slice(value.as_msgpack());
        }
        Ok(out)
    }

    fn decode(&self, bytes: Bytes) -> Result<Data> {
        decode_any(bytes)
    }
}

impl Codec for Json {
    fn encode(&self, data: &Data) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(
            16 + data
                .iter()
                .map(|(k, v)| k.len() + 4 + v.as_msgpack().len() * 2)
                .sum::<usize>(),
        );
        out.extend_from_slice(b"{\"v\":1,\"data\":{");
        for (i, (key, value)) in data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).map_err(Error::encode)?;
            out.push(b':');
            write_json(&mut out, value)?;
        }
        out.extend_from_slice(b"}}");
        Ok(out)
    }

    fn decode(&self, bytes: Bytes) -> Result<Data> {
        decode_any(bytes)
    }
}

/// Decodes any built-in format, recognised by its first byte.
///
/// # Errors
///
/// [`Error::Decode`] for empty, unknown, malformed or truncated input.
pub fn decode_any(bytes: Bytes) -> Result<Data> {
    match bytes.first() {
        Some(&MSGPACK_V1) => decode_msgpack(bytes),
        Some(b'{') => decode_json(&bytes),
        Some(other) => Err(Error::decode(UnknownFormat(*other))),
        None => Err(Error::decode(FormatError("empty session blob"))),
    }
}

fn decode_msgpack(bytes: Bytes) -> Result<Data> {
    let mut pos = 1;
    let mut rd = &bytes[pos..];
    let len = rmp::decode::read_map_len(&mut rd)
        .map_err(|e| Error::decode(FormatError(marker_msg(&e))))?;
    pos = bytes.len() - rd.len();
    // Every key and value takes at least one byte each.
    if u64::from(len) * 2 > (bytes.len() - pos) as u64 {
        return Err(Error::decode(FormatError("map length exceeds the data")));
    }
    let mut map = BTreeMap::new();
    for _ in 0..len {
        let mut rd = &bytes[pos..];
        let key_len = rmp::decode::read_str_len(&mut rd)
            .map_err(|_| Error::decode(FormatError("a key is not a string")))?
            as usize;
        let key_start = bytes.len() - rd.len();
        let key_end = key_start
            .checked_add(key_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| Error::decode(FormatError("truncated key")))?;
        let key = std::str::from_utf8(&bytes[key_start..key_end]).map_err(Error::decode)?;
        let value_len = msgpack_value_len(&bytes[key_end..], 0)?;
        let value = Value::from_trusted(bytes.slice(key_end..key_end + value_len));
        map.insert(key.to_owned(), value);
        pos = key_end + value_len;
    }
    if pos != bytes.len() {
        return Err(Error::decode(FormatError("trailing bytes after the data")));
    }
    Ok(Data::from_map(map))
}

fn marker_msg(_: &rmp::decode::ValueReadError) -> &'static str {
    "data is not a MessagePack map"
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(borrow)]
    data: BTreeMap<String, &'a serde_json::value::RawValue>,
}

fn decode_json(bytes: &[u8]) -> Result<Data> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(Error::decode)?;
    if envelope.v != 1 {
        return Err(Error::decode(UnsupportedVersion(envelope.v)));
    }
    let mut map = BTreeMap::new();
    for (key, raw) in envelope.data {
        map.insert(key, value_from_json(raw.get())?);
    }
    Ok(Data::from_map(map))
}

/// Writes `value` as JSON.
///
/// JSON object keys are strings; serde_json would silently turn an integer key into one, so the
/// value would read back differently from what was written: such a value is an error instead.
pub(crate) fn write_json(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    match json_shape(value.as_msgpack())? {
        JsonShape::Fits => {}
        JsonShape::NonStringKey => {
            return Err(Error::encode(FormatError(
                "a JSON format cannot store a map whose keys are not strings",
            )));
        }
        JsonShape::TooDeep => {
            return Err(Error::encode(FormatError(
                "a JSON format cannot store a value nested more than 100 levels deep",
            )));
        }
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(value.as_msgpack());
    let mut ser = serde_json::Serializer::with_formatter(out, WideFloats);
    serde_transcode::transcode(&mut de, &mut ser).map_err(Error::encode)
}

/// serde_json's compact output, except that a 32-bit float is written with the digits of its
/// exact 64-bit value: the shortest 32-bit digits (`-25960.656` for `-25960.65625f32`) read back
/// as a different 64-bit number, while the 64-bit digits read back as the same value at either
/// width.
struct WideFloats;

impl serde_json::ser::Formatter for WideFloats {
    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// The value of one JSON text.
pub(crate) fn value_from_json(json: &str) -> Result<Value> {
    let mut out = Vec::with_capacity(json.len());
    let mut de = serde_json::Deserializer::from_str(json);
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    serde_transcode::transcode(&mut de, &mut ser).map_err(Error::decode)?;
    Ok(Value::from_trusted(Bytes::from(out)))
}

/// The length in bytes of the one MessagePack value at the start of `buf`.
///
/// Iterative (no recursion, so deep nesting cannot overflow the stack) and bounded by
/// `buf.len()` (no allocation from lengths read in the input).
pub(crate) fn msgpack_value_len(buf: &[u8], _depth: u32) -> Result<usize> {
    let truncated = || Error::decode(FormatError("truncated MessagePack value"));
    let mut pos: usize = 0;
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *buf.get(pos).ok_or_else(truncated)?;
        pos += 1;
        let be = |pos: usize, n: usize| -> Result<u64> {
            let b = buf.get(pos..pos + n).ok_or_else(truncated)?;
            Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        };
        // (bytes to skip after the marker and any length field, child values to read)
        let (skip, children, len_bytes): (u64, u64, usize) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
            0x80..=0x8f => (0, u64::from(marker & 0x0f) * 2, 0),
            0x90..=0x9f => (0, u64::from(marker & 0x0f), 0),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0, 0),
            0xc1 => {
                return Err(Error::decode(FormatError(
                    "reserved MessagePack marker 0xc1",
                )));
            }
            0xc4 | 0xd9 => (be(pos, 1)?, 0, 1),
            0xc5 | 0xda => (be(pos, 2)?, 0, 2),
            0xc6 | 0xdb => (be(pos, 4)?, 0, 4),
            0xc7 => (be(pos, 1)? + 1, 0, 1),
            0xc8 => (be(pos, 2)? + 1, 0, 2),
            0xc9 => (be(pos, 4)? + 1, 0, 4),
            0xca | 0xce | 0xd2 => (4, 0, 0),
            0xcb | 0xcf | 0xd3 => (8, 0, 0),
            0xcc | 0xd0 => (1, 0, 0),
            0xcd | 0xd1 => (2, 0, 0),
            0xd4 => (2, 0, 0),
            0xd5 => (3, 0, 0),
            0xd6 => (5, 0, 0),
            0xd7 => (9, 0, 0),
            0xd8 => (17, 0, 0),
            0xdc => (0, be(pos, 2)?, 2),
            0xdd => (0, be(pos, 4)?, 4),
            0xde => (0, be(pos, 2)? * 2, 2),
            0xdf => (0, be(pos, 4)? * 2, 4),
        };
        pos += len_bytes;
        let skip = usize::try_from(skip).map_err(|_| truncated())?;
        pos = pos
            .checked_add(skip)
            .filter(|&p| p <= buf.len())
            .ok_or_else(truncated)?;
        pending += children;
        // Each pending value needs at least one more byte.
        if pending > (buf.len() - pos) as u64 {
            return Err(truncated());
        }
    }
    Ok(pos)
}

/// How deep a value stored in a JSON format may nest. serde_json refuses to read JSON nested
/// more than 128 levels (a guard against stack exhaustion), so a deeper value would be written
/// and then never read back; the formats put values one or two levels down.
pub const MAX_JSON_DEPTH: usize = 100;

/// Whether a MessagePack value can be written as JSON and read back as the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonShape {
    Fits,
    /// A map has a key that is not a string (serde_json would write it as one).
    NonStringKey,
    /// Nested deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
}

/// Checks every map and the nesting inside the one MessagePack value at the start of `buf`.
///
/// Iterative, like [`msgpack_value_len`]: a stack of open containers, each with the number of
/// items left (a map's keys and values alternate, keys first).
fn json_shape(buf: &[u8]) -> Result<JsonShape> {
    // (items left in this container, whether it is a map)
    let mut open: Vec<(u64, bool)> = Vec::new();
    let mut pos = 0;
    loop {
        let is_key = match open.last_mut() {
            Some((left, is_map)) => {
                let key = *is_map && *left % 2 == 0;
                *left -= 1;
                key
            }
            None => false,
        };
        let marker = *buf
            .get(pos)
            .ok_or_else(|| Error::encode(FormatError("truncated MessagePack value")))?;
        let is_str = matches!(marker, 0xa0..=0xbf | 0xd9 | 0xda | 0xdb);
        if is_key && !is_str {
            return Ok(JsonShape::NonStringKey);
        }
        let (header, items, is_map) = match marker {
            0x80..=0x8f => (1, u64::from(marker & 0x0f) * 2, true),
            0x90..=0x9f => (1, u64::from(marker & 0x0f), false),
            0xdc | 0xde => {
                let b = buf.get(pos + 1..pos + 3).ok_or_else(truncated)?;
                let n = u64::from(u16::from_be_bytes([b[0], b[1]]));
                (3, if marker == 0xde { n * 2 } else { n }, marker == 0xde)
            }
            0xdd | 0xdf => {
                let b = buf.get(pos + 1..pos + 5).ok_or_else(truncated)?;
                let n = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                (5, if marker == 0xdf { n * 2 } else { n }, marker == 0xdf)
            }
            _ => (msgpack_value_len(&buf[pos..], 0)?, 0, false),
        };
        pos += header;
        let is_container = matches!(marker, 0x80..=0x9f | 0xdc..=0xdf);
        if is_container && open.len() >= MAX_JSON_DEPTH {
            return Ok(JsonShape::TooDeep);
        }
        if items > 0 {
            open.push((items, is_map));
        }
        while open.last().is_some_and(|(left, _)| *left == 0) {
            open.pop();
        }
        if open.is_empty() {
            return Ok(JsonShape::Fits);
        }
    }
}

fn truncated() -> Error {
    Error::encode(FormatError("truncated MessagePack value"))
}

/// A structural problem in encoded bytes.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FormatError(pub(crate) &'static str);

/// The first byte of a stored blob names no known format.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("unknown session data format (first byte {0:#04x})")]
struct UnknownFormat(u8);

/// A known format at a version this build does not read.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("unsupported session data format version {0}")]
struct UnsupportedVersion(u32);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn sample() -> Data {
        let mut d = Data::new();
        d.insert("user", &"ada").expect("encode");
        d.insert("n", &42i64).expect("encode");
        d.insert("neg", &-7i32).expect("encode");
        d.insert("f", &1.5f64).expect("encode");
        d.insert("nested", &json!({"a": [1, 2, {"b": null}], "ü": "ñ😀"}))
            .expect("encode");
        d.insert("bytes", &serde_bytes_like()).expect("encode");
        d
    }

    fn serde_bytes_like() -> Vec<u8> {
        (0u8..=255).collect()
    }

    #[test]
    fn json_codec_refuses_maps_with_non_string_keys() {
        // Found by the codec_decode fuzz target: serde_json wrote the integer key 61 as "61",
        // so the value read back differed from the value written.
        let mut d = Data::new();
        let value = Value::from_msgpack(Bytes::from_static(&[0x81, 0x3d, 0x90])).expect("valid");
        d.insert_value("", value);
        assert!(matches!(Json.encode(&d), Err(Error::Encode(_))));
        let mut nested = Data::new();
        let mut inner = std::collections::BTreeMap::new();
        inner.insert(1u8, vec![std::collections::BTreeMap::from([(2u8, 3u8)])]);
        nested.insert("k", &vec![inner]).expect("encode");
        assert!(matches!(Json.encode(&nested), Err(Error::Encode(_))));
        // String keys at every depth still encode.
        let mut ok = Data::new();
        ok.insert("k", &json!({"a": [{"b": {"c": 1}}, {}], "d": []}))
            .expect("encode");
        assert!(Json.encode(&ok).is_ok());
    }

    #[test]
    fn json_formats_refuse_values_too_deep_to_read_back() {
        // Found by the codec_decode fuzz target: 150 nested arrays were written as JSON that
        // serde_json then refused to read (its recursion limit), losing the session.
        fn nested(depth: usize) -> Data {
            let mut bytes = vec![0x91; depth - 1];
            bytes.push(0x90);
            let mut d = Data::new();
            d.insert_value("k", Value::from_msgpack(Bytes::from(bytes)).expect("valid"));
            d
        }
        let fits = nested(MAX_JSON_DEPTH);
        let json = Json.encode(&fits).expect("encode at the limit");
        assert_eq!(Json.decode(Bytes::from(json)).expect("read back"), fits);
        assert!(matches!(
            Json.encode(&nested(MAX_JSON_DEPTH + 1)),
            Err(Error::Encode(_))
        ));
        // MessagePack has no such limit.
        let deep = nested(1000);
        let packed = MessagePack.encode(&deep).expect("encode");
        assert_eq!(
            MessagePack.decode(Bytes::from(packed)).expect("decode"),
            deep
        );
    }

    #[test]
    fn json_floats_round_trip_exactly() {
        // Found by the express_decode fuzz target: without serde_json's exact float parsing,
        // 93999090090000000000 came back as 93999090089999990000.
        let mut d = Data::new();
        for (i, f) in [9.399909009e19_f64, 0.1, 1.0 / 3.0, f64::MAX, 5e-324]
            .iter()
            .enumerate()
        {
            d.insert(format!("f{i}"), f).expect("encode");
        }
        let mut once = Json.encode(&d).expect("encode");
        for _ in 0..3 {
            let back = Json.decode(Bytes::from(once.clone())).expect("decode");
            assert_eq!(back, d);
            once = Json.encode(&back).expect("encode");
        }
    }

    #[test]
    fn json_keeps_32_bit_floats_exact() {
        // Found by the codec_decode fuzz target: -25960.65625f32 was written as -25960.656,
        // which reads back as another number when read as a 64-bit float.
        let mut d = Data::new();
        d.insert("f", &-25960.656_f32).expect("encode");
        let back = Json
            .decode(Bytes::from(Json.encode(&d).expect("encode")))
            .expect("decode");
        assert_eq!(back.get::<f32>("f").expect("f32"), Some(-25960.656_f32));
        assert_eq!(
            back.get::<f64>("f").expect("f64"),
            Some(f64::from(-25960.656_f32))
        );
    }

    #[test]
    fn msgpack_round_trip() {
        let d = sample();
        let enc = MessagePack.encode(&d).expect("encode");
        assert_eq!(enc[0], MSGPACK_V1);
        let back = MessagePack.decode(Bytes::from(enc)).expect("decode");
        assert_eq!(back, d);
    }

    #[test]
    fn json_round_trip_and_cross_decoding() {
        let d = sample();
        let enc = Json.encode(&d).expect("encode");
        let text = std::str::from_utf8(&enc).expect("utf8");
        assert!(text.starts_with("{\"v\":1,\"data\":{"), "{text}");
        let back = Json.decode(Bytes::from(enc.clone())).expect("decode");
        assert_eq!(back.to_json().expect("json"), d.to_json().expect("json"));
        // A store switched to MessagePack still reads JSON blobs, and the reverse.
        let via_mp = MessagePack.decode(Bytes::from(enc)).expect("decode");
        assert_eq!(
            via_mp.get::<String>("user").expect("get"),
            Some("ada".into())
        );
        let mp = MessagePack.encode(&d).expect("encode");
        assert_eq!(Json.decode(Bytes::from(mp)).expect("decode"), d);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x01",
            b"\x01\x81",
            b"\x01\x81\xa1k",
            b"\x01\x81\x01\x01",
            b"\x01\x80\x00",
            b"\x01\xdf\xff\xff\xff\xff",
            b"{\"v\":2,\"data\":{}}",
            b"{not json",
        ] {
            assert!(
                matches!(
                    decode_any(Bytes::copy_from_slice(bad)),
                    Err(Error::Decode(_))
                ),
                "{bad:?} should not decode"
            );
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut deep = vec![MSGPACK_V1, 0x81, 0xa1, b'k'];
        deep.extend(std::iter::repeat_n(0x91, 1_000_000));
        deep.push(0xc0);
        let d = decode_any(Bytes::from(deep)).expect("well-formed");
        assert_eq!(d.len(), 1);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_any(Bytes::from(bytes.clone()));
            let mut tagged = vec![MSGPACK_V1];
            tagged.extend_from_slice(&bytes);
            if let Ok(d) = decode_any(Bytes::from(tagged)) {
                // Whatever decodes re-encodes to something that decodes to the same data.
                let again = MessagePack.encode(&d).expect("re-encode");
                prop_assert_eq!(decode_any(Bytes::from(again)).expect("decode"), d);
            }
        }

        #[test]
        fn any_json_object_round_trips(map in proptest::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..8)) {
            let mut d = Data::new();
            for (k, v) in &map { d.insert(k.clone(), v).expect("encode"); }
            for codec in [&MessagePack as &dyn Codec, &Json] {
                let back = codec.decode(Bytes::from(codec.encode(&d).expect("encode"))).expect("decode");
                for (k, v) in &map { prop_assert_eq!(back.get::<i64>(k).expect("get"), Some(*v)); }
            }
        }
    }
}
