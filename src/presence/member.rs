//! Who follows a topic, and what changed.

use std::sync::Arc;

use serde_json::Value;

/// One subscriber following a topic: its id and the descriptor the app gave
/// when it joined. From [`Presence::list`](super::Presence::list) and in
/// every [`PresenceEvent`].
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    subscriber: Arc<str>,
    descriptor: Arc<Value>,
}

impl Member {
    pub(super) fn new(subscriber: Arc<str>, descriptor: Arc<Value>) -> Self {
        Self {
            subscriber,
            descriptor,
        }
    }

    /// The subscriber's id: the one given to
    /// [`join_as`](super::Presence::join_as), or the `urn:uuid:` that
    /// [`join`](super::Presence::join) drew.
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }

    /// The descriptor the app gave when it joined (a user id, a profile,
    /// `null`).
    pub fn descriptor(&self) -> &Value {
        &self.descriptor
    }

    /// The member as stored in Redis: `{"s": subscriber, "d": descriptor}`.
    #[cfg(feature = "redis")]
    pub(super) fn to_json(&self) -> String {
        serde_json::json!({ "s": &*self.subscriber, "d": &*self.descriptor }).to_string()
    }

    /// The member stored by [`to_json`](Self::to_json), if `json` is one.
    #[cfg(feature = "redis")]
    pub(super) fn from_json(json: &[u8]) -> Option<Self> {
        let mut value: Value = serde_json::from_slice(json).ok()?;
        let descriptor = value.get_mut("d")?.take();
        let subscriber = value.get("s")?.as_str()?;
        Some(Self::new(subscriber.into(), Arc::new(descriptor)))
    }
}

/// What happened to a member of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresenceChange {
    /// It joined: the subscription is active.
    Joined,
    /// It left: its [`PresenceGuard`](super::PresenceGuard) was dropped or
    /// [`left`](super::PresenceGuard::leave).
    Left,
    /// Its instance stopped sending heartbeats (it crashed, or lost Redis
    /// for longer than the expiry) and another instance removed it (Redis
    /// only; see the crash bound in the [module docs](super)).
    Expired,
}

/// One join or leave: the topic, the member, and what changed. From
/// [`Presence::events`](super::Presence::events).
///
/// The fields map to a Mercure subscription update ("Active
/// Subscriptions"): `topic` is the matcher, [`subscriber`](Self::subscriber)
/// the subscriber, [`is_active`](Self::is_active) `active`, and
/// [`descriptor`](Self::descriptor) the `payload`.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceEvent {
    topic: Arc<str>,
    member: Member,
    change: PresenceChange,
}

impl PresenceEvent {
    pub(super) fn new(topic: Arc<str>, member: Member, change: PresenceChange) -> Self {
        Self {
            topic,
            member,
            change,
        }
    }

    /// The topic joined or left.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The member that joined or left.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The member's subscriber id.
    pub fn subscriber(&self) -> &str {
        self.member.subscriber()
    }

    /// The member's descriptor.
    pub fn descriptor(&self) -> &Value {
        self.member.descriptor()
    }

    /// What changed.
    pub fn change(&self) -> PresenceChange {
        self.change
    }

    /// `true` for a join, `false` for a leave or an expiry: Mercure's
    /// `active`.
    pub fn is_active(&self) -> bool {
        self.change == PresenceChange::Joined
    }
}

/// A fresh subscriber id: `urn:uuid:` and a random (version 4) UUID.
pub(super) fn random_subscriber() -> String {
    let bits = fastrand::u128(..);
    // Version 4, variant RFC 9562.
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_subscribers_are_version_4_uuids() {
        let a = random_subscriber();
        assert_eq!(a.len(), "urn:uuid:".len() + 36, "{a}");
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(&uuid[14..15], "4", "{a}");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, random_subscriber());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn members_round_trip_through_json() {
        let member = Member::new("u1".into(), Arc::new(serde_json::json!({"name": "Ada\n"})));
        assert_eq!(Member::from_json(member.to_json().as_bytes()), Some(member));
        for bad in [&b"{}"[..], b"[]", b"{\"s\": 1, \"d\": 2}", b"not json"] {
            assert_eq!(Member::from_json(bad), None);
        }
    }
}
