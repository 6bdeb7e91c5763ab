//! A `list_task` body as the decoder's fast path borrows it: the envelope, the records,
//! and each record's fields ([`RawTask`]), known ones in slots and the rest kept whole for
//! the `extra` column. What the fields mean is decided in `decode.rs`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::field::Field;

/// The envelope of an ordinary page, borrowed from the body. Any other key fails the
/// fast path: skipping it unread could accept a body the `Value` path refuses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FastEnvelope<'a> {
    /// `code`: the API error code; only 0 stays on the fast path; any other goes to the `Value` path.
    #[serde(borrow, default)]
    pub(super) code: Field<'a>,
    /// `msg`: read only so that the key is allowed; an ordinary page's message is not used.
    #[serde(borrow, default, rename = "msg")]
    _msg: Field<'a>,
    /// `data`: the page itself; missing or null fails the fast path.
    #[serde(borrow, default)]
    pub(super) data: Option<FastData<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FastData<'a> {
    /// `data.total`: records in the whole window; must be a non-negative integer.
    #[serde(borrow, default)]
    pub(super) total: Field<'a>,
    /// `data.num`: records in this page, read only so that the key is allowed (`list` is counted).
    #[serde(borrow, default, rename = "num")]
    _num: Field<'a>,
    /// `data.list`: the records; missing or null is an empty page.
    #[serde(borrow, default)]
    pub(super) list: Option<Vec<FastRecord<'a>>>,
}

/// An element of `data.list` that is a JSON object; anything else fails the fast path.
pub(super) struct FastRecord<'a>(pub(super) RawTask<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for FastRecord<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for ObjectOnly<'a> {
            type Value = FastRecord<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a task object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut raw = RawTask::default();
                let mut seen = 0u32;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match raw.slot(&key) {
                        // A repeated known key: the Value path decides (its last one wins).
                        Some((bit, _)) if seen & bit != 0 => return Err(serde::de::Error::custom("duplicate field")),
                        Some((bit, slot)) => {
                            seen |= bit;
                            *slot = map.next_value()?;
                        }
                        // Parsed as the Value path parses it, so that both keep the same
                        // text, and refuse the same bodies (a number beyond f64).
                        None => {
                            let value: Value = map.next_value()?;
                            raw.extra.get_or_insert_with(Map::new).insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(FastRecord(raw))
            }
        }
        d.deserialize_map(ObjectOnly(std::marker::PhantomData))
    }
}

/// An object key, borrowed from the body unless it holds escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

/// The columns a task record's known fields become, in the order of [`RawTask`]'s fields.
pub(crate) const KNOWN_FIELDS: [&str; 18] = [
    "task_id",
    "status",
    "err_code",
    "err_message",
    "create_time",
    "finish_time",
    "src_bitrate",
    "dst_bitrate",
    "template_id",
    "template_name",
    "input",
    "output",
    "objkey",
    "input_url",
    "output_url",
    "bucket",
    "region",
    "region_type",
];

/// The fields of a task record, borrowed from the body: the known ones that become
/// columns, and the rest, kept whole for the `extra` column.
#[derive(Default)]
pub(super) struct RawTask<'a> {
    /// `task_id`: the row's key; a record without one is rejected.
    pub(super) task_id: Field<'a>,
    /// `status`: the task's state, kept as the API spelled it.
    pub(super) status: Field<'a>,
    /// `err_code`: 0 = success, non-zero = failure.
    pub(super) err_code: Field<'a>,
    /// `err_message`: description of `err_code`.
    pub(super) err_message: Field<'a>,
    /// `create_time`: unix seconds or a local-time string; a record without a usable one is rejected.
    pub(super) create_time: Field<'a>,
    /// `finish_time`: unix seconds or a local-time string; 0 or missing while unfinished.
    pub(super) finish_time: Field<'a>,
    /// `src_bitrate`: input video bitrate (kbit/s), read as a float.
    pub(super) src_bitrate: Field<'a>,
    /// `dst_bitrate`: output video bitrate (kbit/s), read as a float.
    pub(super) dst_bitrate: Field<'a>,
    /// `template_id`: transcoding template id.
    pub(super) template_id: Field<'a>,
    /// `template_name`: transcoding template name.
    pub(super) template_name: Field<'a>,
    /// `input`: source video location, as given to `create_task`.
    pub(super) input: Field<'a>,
    /// `output`: output location, e.g. `oss://bucket/path/file.mp4`.
    pub(super) output: Field<'a>,
    /// `objkey`: object key of the stored output.
    pub(super) objkey: Field<'a>,
    /// `input_url`: downloadable URL of the input; its query string is stripped unless `keep_url_query`.
    pub(super) input_url: Field<'a>,
    /// `output_url`: downloadable URL of the output; its query string is stripped unless `keep_url_query`.
    pub(super) output_url: Field<'a>,
    /// `bucket`: storage bucket name.
    pub(super) bucket: Field<'a>,
    /// `region`: bucket region, e.g. `cn-zhangjiakou`.
    pub(super) region: Field<'a>,
    /// `region_type`: storage vendor kind (`s3`, `oss`, `obs`, ...).
    pub(super) region_type: Field<'a>,
    /// Fields no column is made of; `None` when there are none.
    pub(super) extra: Option<Map<String, Value>>,
}

impl<'a> RawTask<'a> {
    /// The known field named `key` and its bit among [`KNOWN_FIELDS`]; `None` for others.
    fn slot(&mut self, key: &str) -> Option<(u32, &mut Field<'a>)> {
        let i = KNOWN_FIELDS.iter().position(|k| *k == key)?;
        let slot = match i {
            0 => &mut self.task_id,
            1 => &mut self.status,
            2 => &mut self.err_code,
            3 => &mut self.err_message,
            4 => &mut self.create_time,
            5 => &mut self.finish_time,
            6 => &mut self.src_bitrate,
            7 => &mut self.dst_bitrate,
            8 => &mut self.template_id,
            9 => &mut self.template_name,
            10 => &mut self.input,
            11 => &mut self.output,
            12 => &mut self.objkey,
            13 => &mut self.input_url,
            14 => &mut self.output_url,
            15 => &mut self.bucket,
            16 => &mut self.region,
            _ => &mut self.region_type,
        };
        Some((1 << i, slot))
    }

    /// The same fields from a record parsed into a `Value` map.
    pub(super) fn from_map(obj: &'a Map<String, Value>) -> RawTask<'a> {
        let mut raw = RawTask::default();
        for (key, value) in obj {
            match raw.slot(key) {
                Some((_, slot)) => *slot = Field::from(Some(value)),
                None => {
                    raw.extra.get_or_insert_with(Map::new).insert(key.clone(), value.clone());
                }
            }
        }
        raw
    }
}
