//! The Unleash client-features payload as it arrives on the wire.
//!
//! These types only describe the JSON; [`crate::compile`] turns them into the
//! evaluation-ready [`crate::Snapshot`]. Parsing is tolerant where servers and
//! older payloads differ (numbers where strings are expected, `null` for absent
//! lists) and strict where a wrong shape would change a flag's meaning.

mod delta;
#[cfg(test)]
mod tests;
mod update;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Quoted, QUOTED_CHARS};
pub use delta::{
    DeltaEvent, FeatureRemoved, FeatureUpdated, Hydration, SegmentRemoved, SegmentUpdated,
};
pub use update::Update;

/// A full `GET /api/client/features` response.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeatures {
    /// Payload format version (2 for every current server).
    #[serde(default)]
    pub version: Option<u32>,
    /// The flags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: Vec<Feature>,
    /// Segments referenced by strategies (sent when the client announces
    /// `Unleash-Client-Spec` 4.3 or newer; older payloads inline them).
    #[serde(default, deserialize_with = "null_as_default")]
    pub segments: Vec<Segment>,
}

/// One flag.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    /// The flag's name, unique in a payload.
    pub name: String,
    /// Whether the flag is on in this environment.
    pub enabled: bool,
    /// Flag type (release, experiment, ...), informational.
    #[serde(default, rename = "type")]
    pub feature_type: Option<String>,
    /// Project the flag belongs to.
    #[serde(default)]
    pub project: Option<String>,
    /// Whether evaluations of this flag emit impression events.
    #[serde(default, deserialize_with = "null_as_default")]
    pub impression_data: bool,
    /// Activation strategies; an empty list means "on for everyone".
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<Strategy>,
    /// Feature-level variants (deprecated upstream in favour of strategy variants).
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
    /// Parent flags this flag depends on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dependencies: Vec<Dependency>,
}

/// One activation strategy of a flag.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Strategy name (`default`, `flexibleRollout`, ...).
    pub name: String,
    /// Strategy parameters; values are strings on the wire, numbers are accepted.
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub parameters: BTreeMap<String, String>,
    /// Constraints that must all hold.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
    /// Segment ids whose constraints must all hold.
    #[serde(default, deserialize_with = "null_as_default")]
    pub segments: Vec<i64>,
    /// Variants assigned when this strategy is the one that enabled the flag.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
}

/// A constraint on one context field.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    /// Context field (`userId`, `currentTime`, or a custom property name).
    pub context_name: String,
    /// Operator name (`IN`, `NUM_GT`, `REGEX`, ...).
    pub operator: String,
    /// Values for list operators.
    #[serde(default, deserialize_with = "lenient_string_list")]
    pub values: Vec<String>,
    /// Value for single-value operators.
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
    /// Negates the result.
    #[serde(default, deserialize_with = "null_as_default")]
    pub inverted: bool,
    /// String operators compare without regard to case.
    #[serde(default, deserialize_with = "null_as_default")]
    pub case_insensitive: bool,
}

/// A reusable list of constraints.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Segment id referenced by strategies.
    pub id: i64,
    /// Constraints that must all hold.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
}

/// A variant, at feature or strategy level.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// Variant name.
    pub name: String,
    /// Relative weight.
    #[serde(default)]
    pub weight: u32,
    /// Stickiness field (feature variants; strategy variants use the strategy's).
    #[serde(default)]
    pub stickiness: Option<String>,
    /// Optional payload returned with the variant.
    #[serde(default)]
    pub payload: Option<Payload>,
    /// Context values that force this variant (feature variants only).
    #[serde(default, deserialize_with = "null_as_default")]
    pub overrides: Vec<Override>,
}

/// A variant payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub struct Payload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub payload_type: String,
    /// The payload text.
    #[serde(deserialize_with = "required_lenient_string")]
    pub value: String,
}

/// A variant override.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// Context field to look at.
    pub context_name: String,
    /// Values that select the variant.
    #[serde(default, deserialize_with = "lenient_string_list")]
    pub values: Vec<String>,
}

/// A dependency on a parent flag.
#[derive(Debug, Clone, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Parent flag name.
    pub feature: String,
    /// Expected parent state (default: enabled).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// When non-empty, the parent's variant must be one of these.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A scalar that the wire may send as a string, number or boolean.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Scalar::deserialize(deserializer)?.0)
}

fn required_lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Scalar::deserialize(deserializer)?
        .0
        .ok_or_else(|| de::Error::custom("expected a string, found null"))
}

fn lenient_string_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let items: Option<Vec<Scalar>> = Option::deserialize(deserializer)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.0)
        .collect())
}

fn lenient_string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let items: Option<BTreeMap<String, Scalar>> = Option::deserialize(deserializer)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.0.map(|v| (k, v)))
        .collect())
}

/// A path as `serde_path_to_error` writes it (`features[0].name`; empty for
/// the document itself), with a long key cut short.
fn path_text(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        let name = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } => key.as_str(),
            Segment::Enum { variant } => variant.as_str(),
            Segment::Unknown => "?",
        };
        if !out.is_empty() {
            out.push('.');
        }
        if name.chars().nth(QUOTED_CHARS).is_some() {
            out.push_str(&Quoted(name).to_string());
        } else {
            out.push_str(name);
        }
    }
    out
}
