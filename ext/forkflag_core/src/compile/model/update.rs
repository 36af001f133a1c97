//! Reading a payload: a full state or a batch of delta events, in one
//! pass that names the path of the first problem.

use serde::{Deserialize, Deserializer};

use super::delta::DeltaEvent;
use super::{path_text, ClientFeatures, Feature, Segment};
use crate::error::shorten_quoted;

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
