//! Input mergers: how a chained job's input is made from its own input and the outputs of its
//! prerequisites, as WorkManager's two `InputMerger`s do it.
//!
//! WorkManager hands a worker with prerequisites `merge([its own input, the output of each
//! prerequisite…])` (`WorkerWrapper`: the request's input first, then the prerequisites'
//! outputs). WorkManager's `Data` is a map of keys to primitives or arrays of primitives; here
//! an input or output is a JSON value, and one that takes part in a merge must be an object
//! (or `null`, which stands for no data). Its values are compared by their JSON type (string,
//! number, boolean, object); `null` counts as a string, as WorkManager says of `Data`.
//!
//! - [`InputMerger::Overwriting`] (`OverwritingInputMerger`, the default): "attempts to add all
//!   keys from all inputs to the output. In case of a conflict, this class will overwrite the
//!   previously-set key."
//! - [`InputMerger::ArrayCreating`] (`ArrayCreatingInputMerger`): the first time a key is seen,
//!   an array is kept and a primitive becomes an array of one; a key seen again of the same type
//!   concatenates (arrays) or appends (a primitive), an array and a primitive of its element
//!   type make a longer array, and any other pair is an error (WorkManager throws
//!   `IllegalArgumentException`; here the job fails without running, saying which key).
//!
//! Unlike WorkManager, whose prerequisites come "in an unspecified order", the order here is
//! fixed: the job's own input, then its prerequisites' outputs in the order they were named.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How the input of a job with prerequisites is made from its own input and their outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputMerger {
    /// Every key of every input; a later input's value for a key replaces an earlier one's
    /// (WorkManager's `OverwritingInputMerger`, its default).
    #[default]
    Overwriting,
    /// Every key of every input, values gathered into arrays (WorkManager's
    /// `ArrayCreatingInputMerger`).
    ArrayCreating,
}

impl std::fmt::Display for InputMerger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputMerger::Overwriting => "overwriting",
            InputMerger::ArrayCreating => "array-creating",
        })
    }
}

/// Why inputs could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// An input that takes part in a merge is not a JSON object (nor `null`).
    #[error(
        "input {index} of the merge is a JSON {found}, not an object; a job whose output feeds a chained job must return an object (key → value), as WorkManager's Data is"
    )]
    NotAnObject {
        /// Which input (0: the job's own input, then its prerequisites' outputs in order).
        index: usize,
        /// Its JSON type.
        found: &'static str,
    },
    /// The array-creating merger met one key with values of different types.
    #[error(
        "the key {key:?} holds a {earlier} in one input and a {later} in a later one; the array-creating merger only gathers values of one type (use the overwriting merger, or rename one key)"
    )]
    TypeMismatch {
        /// The key.
        key: String,
        /// The type gathered so far.
        earlier: &'static str,
        /// The type that does not fit.
        later: &'static str,
    },
}

/// The JSON type of `v` as the merge compares it (`null` counts as a string).
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
    }
}

/// The element type of an array (`None`: empty, fits any type).
fn element_type(items: &[Value]) -> Option<&'static str> {
    items.first().map(type_of)
}

/// Merges `inputs` (in order) with `merger`. `null` inputs take no part; the result is an
/// object (empty when every input is `null`).
///
/// # Errors
/// [`MergeError`] when an input is not an object, or (array-creating) one key holds values of
/// different types.
pub fn merge_inputs<'a>(
    merger: InputMerger,
    inputs: impl IntoIterator<Item = &'a Value>,
) -> Result<Value, MergeError> {
    let mut out = Map::new();
    for (index, input) in inputs.into_iter().enumerate() {
        let map = match input {
            Value::Null => continue,
            Value::Object(map) => map,
            other => {
                return Err(MergeError::NotAnObject {
                    index,
                    found: type_of(other),
                });
            }
        };
        for (key, value) in map {
            match merger {
                InputMerger::Overwriting => {
                    out.insert(key.clone(), value.clone());
                }
                InputMerger::ArrayCreating => {
                    let merged = match (out.remove(key), value) {
                        (None, Value::Array(items)) => Value::Array(items.clone()),
                        (None, v) => Value::Array(vec![v.clone()]),
                        (Some(Value::Array(mut have)), new) => {
                            let (earlier, later) = match new {
                                Value::Array(items) => (element_type(&have), element_type(items)),
                                v => (element_type(&have), Some(type_of(v))),
                            };
                            if let (Some(e), Some(l)) = (earlier, later)
                                && e != l
                            {
                                return Err(MergeError::TypeMismatch {
                                    key: key.clone(),
                                    earlier: e,
                                    later: l,
                                });
                            }
                            match new {
                                Value::Array(items) => have.extend(items.iter().cloned()),
                                v => have.push(v.clone()),
                            }
                            Value::Array(have)
                        }
                        // every value kept by this merger is an array
                        (Some(other), _) => other,
                    };
                    out.insert(key.clone(), merged);
                }
            }
        }
    }
    Ok(Value::Object(out))
}
