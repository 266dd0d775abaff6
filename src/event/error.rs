//! Why an event could not be built, and the fields it names.

use std::fmt;

/// A field of an event that holds a single line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventField {
    /// `event:`, the event type.
    Event,
    /// `id:`, the event id.
    Id,
    /// `retry:`, the reconnection delay.
    Retry,
}

impl EventField {
    /// The field's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Id => "id",
            Self::Retry => "retry",
        }
    }
}

impl fmt::Display for EventField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What was wrong with a refused field value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Problem {
    LineBreak,
    Nul,
}

/// The first field an event refused, kept until the event is sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct InvalidField {
    pub(super) field: EventField,
    pub(super) problem: Problem,
}

impl From<InvalidField> for EventError {
    fn from(invalid: InvalidField) -> Self {
        match invalid.problem {
            Problem::LineBreak => Self::LineBreak {
                field: invalid.field,
            },
            Problem::Nul => Self::Nul {
                field: invalid.field,
            },
        }
    }
}

/// Why an [`Event`](crate::Event) could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventError {
    /// A single-line field (`event` or `id`) was given CR or LF.
    LineBreak {
        /// The field that was refused.
        field: EventField,
    },
    /// The `id` field was given NUL, which clients ignore.
    Nul {
        /// The field that was refused.
        field: EventField,
    },
    /// The value given to [`Event::json`](crate::Event::json) failed to serialize (a map with
    /// keys that are not strings, a `Serialize` impl that fails). The error
    /// is the serializer's own; its type is not part of this API (today it
    /// is a `serde_json::Error`, which `downcast_ref` can reach).
    Json(Box<dyn std::error::Error + Send + Sync>),
    /// The event has no `data` field, where the crate sends it on your
    /// behalf (a broadcast or resumable response's event, a farewell, a
    /// missed-events, expired or heartbeat event). `EventSource` dispatches
    /// nothing for such a block (WHATWG HTML 9.2.6: an empty data buffer
    /// dispatches nothing) while loose parsers (the `openai` SDKs) dispatch
    /// an event with empty data, so clients would disagree. Give it `data`
    /// your clients read: `data("")` for `EventSource`, JSON for the
    /// `openai` SDKs and the AI SDK, which parse every event's data.
    NoData,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineBreak { field } => {
                write!(f, "the `{field}` field of an event cannot contain CR or LF")
            }
            Self::Nul { field } => write!(f, "the `{field}` field of an event cannot contain NUL"),
            Self::Json(err) => write!(f, "event data failed to serialize as JSON: {err}"),
            Self::NoData => f.write_str(
                "the event has no `data` field: `EventSource` would dispatch nothing \
                 for it and loose parsers (the `openai` SDKs) an empty event; \
                 give it data your clients read",
            ),
        }
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(err) => Some(&**err),
            Self::LineBreak { .. } | Self::Nul { .. } | Self::NoData => None,
        }
    }
}
