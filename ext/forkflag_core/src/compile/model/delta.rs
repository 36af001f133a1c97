//! Delta events: edits to a client-features state, applied in order.

use std::collections::HashMap;

use serde::de;
use serde::Deserialize;

use super::{null_as_default, path_text, ClientFeatures, Feature, Segment};
use crate::error::{shorten_quoted, Quoted};

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
    pub(super) fn from_value(mut value: serde_json::Value) -> Result<DeltaEvent, Problem> {
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
