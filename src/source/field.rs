//! One JSON field as the decoder sees it, and the lenient readings of it (int, float,
//! string, time) that the quirks of `list_task` call for.
//!
//! A [`Field`] is built either straight from the body by serde (borrowing the text, no
//! `serde_json::Value` in between: the fast path of every page) or from a `Value` (the
//! path that keeps a rejected record whole). Both go through the same lenient functions
//! below, so the two paths cannot disagree on what a field means.

use std::borrow::Cow;
use std::fmt;

use chrono::FixedOffset;
use compact_str::ToCompactString;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::row::Text;

/// A JSON value reduced to what the lenient readings need.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<'a> {
    /// The key was not there.
    #[default]
    Missing,
    Null,
    /// Borrowed from the body unless the JSON text had escapes.
    Str(Cow<'a, str>),
    /// Any integer that fits an i64.
    Int(i64),
    /// An integer beyond i64.
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// An object or an array: never usable as a field of a task.
    Other,
}

impl<'a> From<Option<&'a Value>> for Field<'a> {
    fn from(v: Option<&'a Value>) -> Field<'a> {
        match v {
            None => Field::Missing,
            Some(Value::Null) => Field::Null,
            Some(Value::String(s)) => Field::Str(Cow::Borrowed(s)),
            Some(Value::Bool(b)) => Field::Bool(*b),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Field::Int(i),
                (None, Some(u)) => Field::UInt(u),
                _ => Field::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Some(Value::Array(_) | Value::Object(_)) => Field::Other,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData))
    }
}

struct FieldVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
    type Value = Field<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map(Field::Int).unwrap_or(Field::UInt(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Field::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Field::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    // Read, not skipped: a number beyond f64 inside must fail here as it fails the
    // `Value` path (skipping does not check numbers), so that both paths agree.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, Value>()?.is_some() {}
        Ok(Field::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Field::Other)
    }
}

/// A value of a type the field cannot hold (an object for a number, say): the decoder
/// stores null for it and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unusable;

impl Field<'_> {
    /// `null`, missing, or a string of only whitespace: "no value".
    fn is_blank(&self) -> bool {
        match self {
            Field::Missing | Field::Null => true,
            Field::Str(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// An integer from a number, an integral float or a numeric string; `Err` for any
    /// other type.
    pub fn int(&self) -> Result<Option<i64>, Unusable> {
        if self.is_blank() {
            return Ok(None);
        }
        let f = match self {
            Field::Int(i) => return Ok(Some(*i)),
            Field::UInt(u) => Some(*u as f64),
            Field::Float(f) => Some(*f),
            Field::Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => return Ok(Some(i)),
                Err(_) => s.trim().parse::<f64>().ok(),
            },
            _ => None,
        };
        match f {
            Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
            _ => Err(Unusable),
        }
    }

    /// A finite float from a number or a numeric string.
    pub fn float(&self) -> Result<Option<f64>, Unusable> {
        if self.is_blank() {
            return Ok(None);
        }
        let f = match self {
            Field::Int(i) => Some(*i as f64),
            Field::UInt(u) => Some(*u as f64),
            Field::Float(f) => Some(*f),
            Field::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        f.filter(|f| f.is_finite()).map(Some).ok_or(Unusable)
    }

    /// A string; numbers and booleans are kept in their JSON spelling, `""` is `None`.
    pub fn string(&self) -> Result<Option<Text>, Unusable> {
        if self.is_blank() {
            return Ok(None);
        }
        match self {
            Field::Str(s) => Ok(Some(Text::from(s.as_ref()))),
            Field::Int(i) => Ok(Some(i.to_compact_string())),
            Field::UInt(u) => Ok(Some(u.to_compact_string())),
            Field::Float(f) => Ok(serde_json::Number::from_f64(*f).map(|n| n.to_compact_string())),
            Field::Bool(b) => Ok(Some(b.to_compact_string())),
            _ => Err(Unusable),
        }
    }

    /// Unix seconds from a number, a numeric string or a local `"YYYY-MM-DD hh:mm:ss"`.
    /// `0` and `"2000-01-01 00:00:00"` mean "not yet" (`None`). A 13-digit value is taken
    /// as milliseconds, which some of the vendor's services send.
    pub fn time(&self, zone: FixedOffset) -> Result<Option<i64>, Unusable> {
        if let Ok(n) = self.int() {
            return Ok(match n {
                None | Some(0) => None,
                Some(ms) if ms > 100_000_000_000 => Some(ms / 1000),
                Some(s) => Some(s),
            });
        }
        match self {
            Field::Str(s) if s.trim() == "2000-01-01 00:00:00" => Ok(None),
            Field::Str(s) => crate::time::parse_local(s, zone).map(Some).ok_or(Unusable),
            _ => Err(Unusable),
        }
    }
}
