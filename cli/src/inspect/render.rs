//! The indented tree `rdpele decode` prints by default, rendered from the JSON description so
//! the two forms can never disagree.

use serde_json::{Map, Value};
use std::fmt::Write;

/// Bytes shown of a long byte string unless `--hex` asks for all of them.
const HEX_PREVIEW: usize = 16;

#[derive(Debug)]
pub struct TreeOptions {
    pub full_hex: bool,
}

pub fn tree(value: &Value, options: &TreeOptions) -> String {
    let mut out = String::new();
    if let Value::Object(map) = value {
        object(&mut out, map, 0, options);
    } else {
        out.push_str(&scalar(value, options));
        out.push('\n');
    }
    out
}

fn object(out: &mut String, map: &Map<String, Value>, depth: usize, options: &TreeOptions) {
    for (key, value) in map {
        entry(out, key, value, depth, options);
    }
}

fn entry(out: &mut String, key: &str, value: &Value, depth: usize, options: &TreeOptions) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) if inline(map).is_none() => {
            let _ = writeln!(out, "{indent}{key}:");
            object(out, map, depth + 1, options);
        }
        Value::Array(items) if items.iter().any(|item| item.is_object()) => {
            let _ = writeln!(out, "{indent}{key}: {} item(s)", items.len());
            for (index, item) in items.iter().enumerate() {
                entry(out, &format!("[{index}]"), item, depth + 1, options);
            }
        }
        _ => {
            let _ = writeln!(out, "{indent}{key}: {}", scalar(value, options));
        }
    }
}

/// The one-line forms: code points, byte strings and blobs.
fn inline(map: &Map<String, Value>) -> Option<InlineKind> {
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    match keys.as_slice() {
        ["value", "name"] => Some(InlineKind::Code),
        ["length", "hex"] => Some(InlineKind::Bytes),
        ["blob_type", "data"] => Some(InlineKind::Blob),
        _ => None,
    }
}

enum InlineKind {
    Code,
    Bytes,
    Blob,
}

fn scalar(value: &Value, options: &TreeOptions) -> String {
    match value {
        Value::Object(map) => match inline(map) {
            Some(InlineKind::Code) => code_text(map),
            Some(InlineKind::Bytes) => bytes_text(map, options),
            Some(InlineKind::Blob) => {
                let blob_type = map.get("blob_type").and_then(Value::as_object);
                let data = map.get("data").and_then(Value::as_object);
                format!(
                    "{}, {}",
                    blob_type.map(code_text).unwrap_or_default(),
                    data.map(|d| bytes_text(d, options)).unwrap_or_default()
                )
            }
            None => value.to_string(),
        },
        Value::String(text) => format!("{text:?}"),
        Value::Number(n) => match n.as_u64() {
            Some(v) if v > 9 => format!("{v} ({v:#x})"),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|v| scalar(v, options)).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn code_text(map: &Map<String, Value>) -> String {
    let value = map.get("value").and_then(Value::as_u64).unwrap_or_default();
    match map.get("name").and_then(Value::as_str) {
        Some(name) => format!("{name} ({value:#x})"),
        None => format!("unknown ({value:#x})"),
    }
}

fn bytes_text(map: &Map<String, Value>, options: &TreeOptions) -> String {
    let length = map
        .get("length")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let hex = map.get("hex").and_then(Value::as_str).unwrap_or_default();
    if length == 0 {
        "0 bytes".to_owned()
    } else if options.full_hex || hex.len() <= HEX_PREVIEW * 2 {
        format!("{length} bytes: {hex}")
    } else {
        format!(
            "{length} bytes: {}…",
            hex.get(..HEX_PREVIEW * 2).unwrap_or(hex)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn code_points_bytes_and_blobs_render_on_one_line() {
        let value = json!({
            "error_code": {"value": 7, "name": "STATUS_VALID_CLIENT"},
            "state_transition": {"value": 9, "name": null},
            "error_info": {"blob_type": {"value": 0x1428, "name": null}, "data": {"length": 0, "hex": ""}},
            "mac_data": {"length": 20, "hex": "000102030405060708090a0b0c0d0e0f10111213"},
        });
        let text = tree(&value, &TreeOptions { full_hex: false });
        assert_eq!(
            text,
            "error_code: STATUS_VALID_CLIENT (0x7)\n\
             state_transition: unknown (0x9)\n\
             error_info: unknown (0x1428), 0 bytes\n\
             mac_data: 20 bytes: 000102030405060708090a0b0c0d0e0f…\n"
        );
        let full = tree(&value, &TreeOptions { full_hex: true });
        assert!(full.contains("000102030405060708090a0b0c0d0e0f10111213\n"));
    }

    #[test]
    fn nested_objects_and_object_lists_indent() {
        let value = json!({"a": {"b": 1}, "list": [{"name": "x"}]});
        let text = tree(&value, &TreeOptions { full_hex: false });
        assert_eq!(
            text,
            "a:\n  b: 1\nlist: 1 item(s)\n  [0]:\n    name: \"x\"\n"
        );
    }
}
