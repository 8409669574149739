//! Label maps: rename labels as a corpus is read, merge several into one, or drop some.
//!
//! A map is a JSON object, `{"Sci/Tech": "technology", "Science": "technology", "Lifestyle": null}`:
//! each label named on the left becomes the one on the right, `null` drops that label's
//! examples, and labels the map does not name stay as they are. Training and evaluation read
//! with the same map, so gold labels are compared in the same terms the model learned.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Location, Result};

/// What becomes of labels as a corpus is read. See the module docs of `corpus::label_map`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "BTreeMap<String, Option<String>>",
    into = "BTreeMap<String, Option<String>>"
)]
pub struct LabelMap {
    entries: BTreeMap<String, Option<String>>,
}

impl LabelMap {
    /// A map from `(from, to)` pairs; `to: None` drops the label. Labels are trimmed; an empty
    /// one is an error.
    pub fn new(
        entries: impl IntoIterator<Item = (String, Option<String>)>,
    ) -> std::result::Result<Self, String> {
        let mut map = BTreeMap::new();
        for (from, to) in entries {
            let from = from.trim().to_string();
            if from.is_empty() {
                return Err("an empty label cannot be mapped".into());
            }
            let to = match to.map(|t| t.trim().to_string()) {
                Some(t) if t.is_empty() => {
                    return Err(format!(
                        "'{from}' maps to an empty label (use null to drop its examples)"
                    ))
                }
                to => to,
            };
            map.insert(from, to);
        }
        Ok(LabelMap { entries: map })
    }

    /// Reads a map from a JSON file holding one object of labels to labels or null.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let value: Value = serde_json::from_slice(super::strip_bom(&bytes)).map_err(|e| {
            Error::input(
                Location::new(path, e.line()),
                format!("not valid JSON: {e}"),
            )
        })?;
        let Value::Object(object) = value else {
            return Err(Error::input(
                Location::new(path, 0),
                "a label map is a JSON object: {\"from\": \"to\", \"dropped\": null}",
            ));
        };
        let mut entries = Vec::with_capacity(object.len());
        for (from, to) in object {
            let to = match to {
                Value::String(s) => Some(s),
                Value::Null => None,
                _ => {
                    return Err(Error::input(
                        Location::new(path, 0).field(&from),
                        "expected a label (a string) or null",
                    ))
                }
            };
            entries.push((from, to));
        }
        LabelMap::new(entries).map_err(|m| Error::input(Location::new(path, 0), m))
    }

    /// What `label` becomes: `None` when the map does not name it (it stays), `Some(None)`
    /// when its examples are dropped, `Some(Some(new))` when it is renamed.
    pub fn get(&self, label: &str) -> Option<Option<&str>> {
        self.entries.get(label).map(|to| to.as_deref())
    }

    /// The labels the map names, in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| k.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl TryFrom<BTreeMap<String, Option<String>>> for LabelMap {
    type Error = String;
    fn try_from(entries: BTreeMap<String, Option<String>>) -> std::result::Result<Self, String> {
        LabelMap::new(entries)
    }
}

impl From<LabelMap> for BTreeMap<String, Option<String>> {
    fn from(map: LabelMap) -> Self {
        map.entries
    }
}
