//! Writing a mutated document as bytes, including what JSON values cannot
//! hold: raw bytes spliced in as they are (invalid UTF-8, out-of-range
//! number texts, nesting too deep to build as values) and an object key
//! written twice.
//!
//! Both travel inside an ordinary `serde_json::Value` as marked strings, so
//! the mutators can move them around like any other node.

use serde_json::Value;

/// Starts a string node whose characters (all below U+0100) are bytes
/// written as they are.
const RAW: &str = "\u{1}raw\u{1}";
/// Starts an object key that is written without its marker, so the object
/// can hold the same key twice: `DUP` + a unique number + `\u{1}` + key.
const DUP: &str = "\u{1}dup";

/// A node written as these bytes, unquoted and unescaped.
pub fn raw(bytes: &[u8]) -> Value {
    let mut s = String::with_capacity(RAW.len() + bytes.len() * 2);
    s.push_str(RAW);
    s.extend(bytes.iter().map(|&b| char::from(b)));
    Value::String(s)
}

/// A key that writes as `key` beside another member named `key`.
pub fn duplicate_key(key: &str, unique: usize) -> String {
    format!("{DUP}{unique}\u{1}{key}")
}

/// The key a member is written with.
pub fn written_key(key: &str) -> &str {
    match key.strip_prefix(DUP) {
        Some(rest) => rest.split_once('\u{1}').map_or(rest, |(_, k)| k),
        None => key,
    }
}

/// The document as bytes.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) if s.starts_with(RAW) => {
            out.extend(s[RAW.len()..].chars().map(|c| c as u32 as u8));
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, written_key(key)).expect("a string writes");
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar writes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_and_duplicate_keys_are_written_as_given() {
        let mut doc = serde_json::json!({"a": 1});
        let obj = doc.as_object_mut().unwrap();
        obj.insert(duplicate_key("a", 7), raw(b"\"\xff\""));
        obj.insert("n".into(), raw(b"1e400"));
        let bytes = to_bytes(&doc);
        for part in [&b"\"a\":1"[..], b"\"a\":\"\xff\"", b"\"n\":1e400"] {
            assert!(bytes.windows(part.len()).any(|w| w == part), "{bytes:?}");
        }
    }
}
