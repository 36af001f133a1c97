//! The Unleash client-features payload as it arrives on the wire.
//!
//! These types only describe the JSON; [`crate::compile`] turns them into the
//! evaluation-ready [`crate::Snapshot`]. Parsing is tolerant where servers and
//! older payloads differ (numbers where strings are expected, `null` for absent
//! lists) and strict where a wrong shape would change a flag's meaning.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{shorten_quoted, Quoted, QUOTED_CHARS};

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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Segment id referenced by strategies.
    pub id: i64,
    /// Constraints that must all hold.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<Constraint>,
}

/// A variant, at feature or strategy level.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Payload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub payload_type: String,
    /// The payload text.
    #[serde(deserialize_with = "required_lenient_string")]
    pub value: String,
}

/// A variant override.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// Context field to look at.
    pub context_name: String,
    /// Values that select the variant.
    #[serde(default, deserialize_with = "lenient_string_list")]
    pub values: Vec<String>,
}

/// A dependency on a parent flag.
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// One delta event.
#[derive(Debug, Clone)]
pub enum DeltaEvent {
    /// Replaces the whole state.
    Hydration(Hydration),
    /// Adds or replaces one flag.
    FeatureUpdated(FeatureUpdated),
    /// Removes one flag.
    FeatureRemoved(FeatureRemoved),
    /// Adds or replaces one segment.
    SegmentUpdated(SegmentUpdated),
    /// Removes one segment.
    SegmentRemoved(SegmentRemoved),
}

/// A `hydration` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hydration {
    /// Event id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// All flags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: Vec<Feature>,
    /// All segments.
    #[serde(default, deserialize_with = "null_as_default")]
    pub segments: Vec<Segment>,
}

/// A `feature-updated` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureUpdated {
    /// Event id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// The flag.
    pub feature: Feature,
}

/// A `feature-removed` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureRemoved {
    /// Event id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// Name of the removed flag.
    pub feature_name: String,
}

/// A `segment-updated` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentUpdated {
    /// Event id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// The segment.
    pub segment: Segment,
}

/// A `segment-removed` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRemoved {
    /// Event id.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// Id of the removed segment.
    pub segment_id: i64,
}

/// A problem in a payload: where (a path such as `features[0].name`,
/// empty for the document) and what.
type Problem = (String, String);

impl DeltaEvent {
    /// Reads an event, naming where in it a problem is. Its `type` is read
    /// first and the rest as that type's fields, so the path of a problem
    /// inside reaches the field (serde's tagged enums read an event as a
    /// whole, and name only the event).
    fn from_value(mut value: serde_json::Value) -> Result<DeltaEvent, Problem> {
        fn read<T: de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                (
                    path_text(e.path()),
                    shorten_quoted(&e.into_inner().to_string()),
                )
            })
        }
        let kind = match value.as_object_mut() {
            None => {
                read::<serde_json::Map<String, serde_json::Value>>(value)?;
                unreachable!("only an object reads as a map")
            }
            Some(event) => match event.remove("type") {
                None => return Err((String::new(), "missing field `type`".into())),
                Some(kind) => read::<String>(kind).map_err(|(_, p)| ("type".to_string(), p))?,
            },
        };
        match kind.as_str() {
            "hydration" => read(value).map(DeltaEvent::Hydration),
            "feature-updated" => read(value).map(DeltaEvent::FeatureUpdated),
            "feature-removed" => read(value).map(DeltaEvent::FeatureRemoved),
            "segment-updated" => read(value).map(DeltaEvent::SegmentUpdated),
            "segment-removed" => read(value).map(DeltaEvent::SegmentRemoved),
            other => Err((
                "type".into(),
                format!(
                    "unknown event type {}, expected one of `hydration`, `feature-updated`, \
                     `feature-removed`, `segment-updated`, `segment-removed`",
                    Quoted(other)
                ),
            )),
        }
    }
}

impl ClientFeatures {
    /// Applies delta events in order.
    pub fn apply(&mut self, events: Vec<DeltaEvent>) {
        // Each event is one lookup by name or id (a search of the list per
        // event made a batch of n events over n flags take n² steps).
        let mut features = Keyed::new(std::mem::take(&mut self.features), |f| f.name.clone());
        let mut segments = Keyed::new(std::mem::take(&mut self.segments), |s| s.id);
        for event in events {
            match event {
                DeltaEvent::Hydration(Hydration {
                    features: all_features,
                    segments: all_segments,
                    ..
                }) => {
                    features = Keyed::new(all_features, |f| f.name.clone());
                    segments = Keyed::new(all_segments, |s| s.id);
                }
                DeltaEvent::FeatureUpdated(FeatureUpdated { feature, .. }) => {
                    features.put(feature.name.clone(), feature);
                }
                DeltaEvent::FeatureRemoved(FeatureRemoved { feature_name, .. }) => {
                    features.remove(&feature_name);
                }
                DeltaEvent::SegmentUpdated(SegmentUpdated { segment, .. }) => {
                    segments.put(segment.id, segment);
                }
                DeltaEvent::SegmentRemoved(SegmentRemoved { segment_id, .. }) => {
                    segments.remove(&segment_id);
                }
            }
        }
        self.features = features.finish();
        self.segments = segments.finish();
    }
}

/// A list edited by key, in order: `put` replaces the first item with the
/// key or appends, `remove` drops every item with the key.
struct Keyed<K, T> {
    items: Vec<Option<T>>,
    at: HashMap<K, Vec<usize>>,
}

impl<K: std::hash::Hash + Eq, T> Keyed<K, T> {
    fn new(items: Vec<T>, key: impl Fn(&T) -> K) -> Self {
        let mut at: HashMap<K, Vec<usize>> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            at.entry(key(item)).or_default().push(i);
        }
        Keyed {
            items: items.into_iter().map(Some).collect(),
            at,
        }
    }

    fn put(&mut self, key: K, item: T) {
        match self.at.get(&key).and_then(|at| at.first()) {
            Some(&i) => self.items[i] = Some(item),
            None => {
                self.at.insert(key, vec![self.items.len()]);
                self.items.push(Some(item));
            }
        }
    }

    fn remove(&mut self, key: &K) {
        for i in self.at.remove(key).unwrap_or_default() {
            self.items[i] = None;
        }
    }

    fn finish(self) -> Vec<T> {
        self.items.into_iter().flatten().collect()
    }
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

/// A payload: either a full state or a batch of delta events.
#[derive(Debug)]
pub enum Update {
    /// A full client-features document.
    Full(ClientFeatures),
    /// Delta events to apply to the current state.
    Delta(Vec<DeltaEvent>),
}

impl Update {
    /// Parses JSON text, naming the path and position of the first problem.
    pub fn parse(json: &[u8]) -> Result<Update, crate::CoreError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let envelope: Envelope = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = path_text(e.path());
            let inner = e.into_inner();
            // serde quotes a wrong value whole: cut it short.
            let problem = shorten_quoted(&if inner.is_syntax() || inner.is_eof() {
                format!("not valid JSON: {inner}")
            } else {
                inner.to_string()
            });
            if path.is_empty() || path == "?" {
                crate::CoreError::InvalidPayload(problem)
            } else {
                crate::CoreError::InvalidPayload(format!("at {path}: {problem}"))
            }
        })?;
        de.end().map_err(|e| {
            crate::CoreError::InvalidPayload(format!(
                "unexpected data after the JSON document: {e}"
            ))
        })?;
        match envelope {
            Envelope {
                features: Some(features),
                segments,
                ..
            } => Ok(Update::Full(ClientFeatures {
                version: None,
                features,
                segments: segments.unwrap_or_default(),
            })),
            Envelope {
                events: Some(events),
                ..
            } => events
                .into_iter()
                .enumerate()
                .map(|(i, event)| {
                    DeltaEvent::from_value(event).map_err(|(path, problem)| {
                        let at = match path.as_str() {
                            "" => format!("events[{i}]"),
                            path => format!("events[{i}].{path}"),
                        };
                        crate::CoreError::InvalidPayload(format!("at {at}: {problem}"))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Update::Delta),
            _ => Err(crate::CoreError::InvalidPayload(
                "expected a JSON object with a \"features\" list (or delta \"events\"); found neither"
                    .into(),
            )),
        }
    }
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

/// Either shape of payload, read in one pass so errors keep their path.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "some_unless_null")]
    features: Option<Vec<Feature>>,
    #[serde(default, deserialize_with = "some_unless_null")]
    segments: Option<Vec<Segment>>,
    #[serde(default, deserialize_with = "some_unless_null")]
    /// Read as values first: see [`DeltaEvent::from_value`].
    events: Option<Vec<serde_json::Value>>,
}

fn some_unless_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(json: &str) -> String {
        match Update::parse(json.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {json:.100}"),
        }
    }

    #[test]
    fn delta_events_update_replace_and_remove_in_order() {
        let feature = |name: &str, enabled: bool| -> Feature {
            serde_json::from_value(serde_json::json!({"name": name, "enabled": enabled})).unwrap()
        };
        let segment =
            |id: i64| -> Segment { serde_json::from_value(serde_json::json!({"id": id})).unwrap() };
        let mut state = ClientFeatures {
            version: None,
            // A name twice: an update replaces the first, a removal both.
            features: vec![
                feature("a", false),
                feature("b", false),
                feature("a", false),
            ],
            segments: vec![segment(1), segment(2)],
        };
        let mut events = vec![
            DeltaEvent::FeatureUpdated(FeatureUpdated {
                event_id: None,
                feature: feature("b", true),
            }),
            DeltaEvent::FeatureUpdated(FeatureUpdated {
                event_id: None,
                feature: feature("c", true),
            }),
            DeltaEvent::SegmentRemoved(SegmentRemoved {
                event_id: None,
                segment_id: 1,
            }),
            DeltaEvent::SegmentUpdated(SegmentUpdated {
                event_id: None,
                segment: segment(3),
            }),
        ];
        // 50,000 flags added and removed again (a search of the list per
        // event took minutes here).
        for i in 0..50_000 {
            events.push(DeltaEvent::FeatureUpdated(FeatureUpdated {
                event_id: None,
                feature: feature(&format!("n{i}"), true),
            }));
        }
        for i in 0..50_000 {
            events.push(DeltaEvent::FeatureRemoved(FeatureRemoved {
                event_id: None,
                feature_name: format!("n{i}"),
            }));
        }
        state.apply(events);
        let flags: Vec<(&str, bool)> = state
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.enabled))
            .collect();
        assert_eq!(
            flags,
            [("a", false), ("b", true), ("a", false), ("c", true)]
        );
        state.apply(vec![DeltaEvent::FeatureRemoved(FeatureRemoved {
            event_id: None,
            feature_name: "a".into(),
        })]);
        let names: Vec<&str> = state.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        let ids: Vec<i64> = state.segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, [2, 3]);
    }

    #[test]
    fn a_rejected_delta_event_names_the_field_inside_it() {
        for (json, expected) in [
            (
                r#"{"events":[{"type":"feature-removed","featureName":"a"},
                   {"type":"segment-updated","segment":{"id":"x"}}]}"#,
                r#"at events[1].segment.id: invalid type: string "x", expected i64"#,
            ),
            (
                r#"{"events":[{"type":"feature-updated","feature":{"name":"a","enabled":true,
                   "strategies":[{"name":"default","constraints":[{"contextName":"a"}]}]}}]}"#,
                "at events[0].feature.strategies[0].constraints[0]: missing field `operator`",
            ),
            (
                r#"{"events":[{"type":"hydration","features":[{"name":"a","enabled":1}]}]}"#,
                "at events[0].features[0].enabled: invalid type: integer `1`, expected a boolean",
            ),
            (
                r#"{"events":[{"type":"feature-updated"}]}"#,
                "at events[0]: missing field `feature`",
            ),
            (
                r#"{"events":[{"eventId":1}]}"#,
                "at events[0]: missing field `type`",
            ),
            (
                r#"{"events":[{"type":7}]}"#,
                "at events[0].type: invalid type: integer `7`, expected a string",
            ),
            (
                r#"{"events":[{"type":"feature-renamed"}]}"#,
                r#"at events[0].type: unknown event type "feature-renamed", expected one of"#,
            ),
            (
                r#"{"events":["hydration"]}"#,
                r#"at events[0]: invalid type: string "hydration", expected a map"#,
            ),
        ] {
            let e = rejection(json);
            assert!(e.contains(expected), "{json}\n{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn a_rejection_quotes_a_huge_value_or_key_in_a_line() {
        let huge = "x".repeat(1 << 20);
        let e = rejection(&format!(
            r#"{{"features":[{{"name":"a","enabled":"{huge}"}}]}}"#
        ));
        assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
        assert!(
            e.contains("at features[0].enabled: invalid type: string \"xxx"),
            "{e}"
        );
        assert!(
            e.contains("(cut, 1048576 characters), expected a boolean"),
            "{e}"
        );
        let e = rejection(&format!(
            r#"{{"features":[{{"name":"a","enabled":true,"strategies":[{{"name":"default","parameters":{{"{huge}":[]}}}}]}}]}}"#
        ));
        assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
        assert!(
            e.contains("at features[0].strategies[0].parameters.\"xxx"),
            "{e}"
        );
    }
}
