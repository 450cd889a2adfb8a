//! The audit log: append-only entries chained per org by SHA-256.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::token::{Hash, same_hash, sha256};

/// The hash before an org's first entry: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Who did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in user.
    User(Uuid),
    /// An org API key (its id).
    ApiKey(Uuid),
    /// The host itself (a billing webhook, a retention job).
    System,
}

impl Actor {
    /// `user`, `api_key` or `system`, as stored.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::ApiKey(_) => "api_key",
            Self::System => "system",
        }
    }

    /// The user's or key's id.
    #[must_use]
    pub fn id(self) -> Option<Uuid> {
        match self {
            Self::User(id) | Self::ApiKey(id) => Some(id),
            Self::System => None,
        }
    }

    /// The actor stored as `kind` and `id`.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`](crate::Error::Corrupt) for an unknown kind or a missing id.
    pub fn from_parts(kind: &str, id: Option<Uuid>) -> crate::Result<Self> {
        match (kind, id) {
            ("user", Some(id)) => Ok(Self::User(id)),
            ("api_key", Some(id)) => Ok(Self::ApiKey(id)),
            ("system", None) => Ok(Self::System),
            _ => Err(crate::Error::Corrupt(format!(
                "audit actor {kind:?} {id:?}"
            ))),
        }
    }
}

/// Where a request came from, copied into the audit entries it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id (`x-request-id`).
    pub request_id: Option<String>,
}

impl RequestInfo {
    /// Nothing known (a background task).
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The client's address.
    #[must_use]
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// The client's `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The request's id.
    #[must_use]
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

/// What to record: the store adds the org, the time, the sequence number and the hashes.
///
/// The detail is JSON for people reading the log: never put a secret in it (a token, a key,
/// a password); this crate records key prefixes and invitation emails, never their secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Who acted.
    pub actor: Actor,
    /// What was done, dotted: `member.add`, `app.publish`.
    pub action: String,
    /// What it was done to (`user:<id>`, `app:<id>`).
    pub target: Option<String>,
    /// Where the request came from.
    #[serde(flatten)]
    pub request: RequestInfo,
    /// Details without secrets (`null` for none).
    pub detail: Value,
}

impl AuditRecord {
    /// A record of `action` by `actor`.
    #[must_use]
    pub fn new(actor: Actor, action: impl Into<String>) -> Self {
        Self {
            actor,
            action: action.into(),
            target: None,
            request: RequestInfo::default(),
            detail: Value::Null,
        }
    }

    /// What the action was done to.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Where the request came from.
    #[must_use]
    pub fn request(mut self, request: RequestInfo) -> Self {
        self.request = request;
        self
    }

    /// Details (no secrets).
    #[must_use]
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// One entry of an org's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// Its place in the org's chain: 1, 2, 3, ... with no gap.
    pub seq: u64,
    /// When it was recorded (to the millisecond).
    pub time: DateTime<Utc>,
    /// Who acted.
    pub actor: Actor,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// Details.
    pub detail: Value,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    #[serde(with = "hex_hash")]
    pub prev_hash: [u8; 32],
    /// SHA-256 of `prev_hash` followed by the entry's canonical content.
    #[serde(with = "hex_hash")]
    pub hash: [u8; 32],
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

impl AuditEntry {
    /// The entry that follows `prev_hash` as number `seq` of `org`'s chain, sealed with its
    /// hash. Stores call this inside the transaction that holds the org's chain head.
    #[must_use]
    pub fn seal(
        org: Uuid,
        seq: u64,
        prev_hash: [u8; 32],
        time: DateTime<Utc>,
        record: AuditRecord,
    ) -> Self {
        let time = DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time);
        let mut entry = Self {
            id: Uuid::now_v7(),
            org_id: org,
            seq,
            time,
            actor: record.actor,
            action: record.action,
            target: record.target,
            ip: record.request.ip,
            user_agent: record.request.user_agent,
            request_id: record.request.request_id,
            detail: record.detail,
            prev_hash,
            hash: [0; 32],
        };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The entry's content in its canonical form: a JSON object with sorted keys at every
    /// level, no whitespace, the time as RFC 3339 in UTC with milliseconds
    /// (`2026-03-14T12:00:00.000Z`). The hashes themselves are not part of it.
    #[must_use]
    pub fn canonical_content(&self) -> String {
        let content = serde_json::json!({
            "action": self.action,
            "actor": {"kind": self.actor.kind(), "id": self.actor.id()},
            "detail": self.detail,
            "id": self.id,
            "ip": self.ip,
            "org": self.org_id,
            "request_id": self.request_id,
            "seq": self.seq,
            "target": self.target,
            "time": self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "user_agent": self.user_agent,
        });
        let mut out = String::new();
        canonical_json(&content, &mut out);
        out
    }

    /// SHA-256 of `prev_hash` followed by [`canonical_content`](Self::canonical_content).
    #[must_use]
    pub fn computed_hash(&self) -> [u8; 32] {
        sha256(&[&self.prev_hash, self.canonical_content().as_bytes()])
    }
}

/// JSON with the keys of every object sorted, whatever the map type in use.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// Where an org's chain stands: kept by the store beside the entries, so that a missing
/// first or last entry shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditHead {
    /// The org.
    pub org_id: Uuid,
    /// The first entry kept (after retention purges); `last_seq + 1` when none is.
    pub first_seq: u64,
    /// The last entry appended (0 before the first).
    pub last_seq: u64,
    /// The last entry's hash.
    #[serde(with = "hex_hash")]
    pub last_hash: [u8; 32],
}

impl AuditHead {
    /// The head of an org with no entry yet.
    #[must_use]
    pub fn empty(org: Uuid) -> Self {
        Self {
            org_id: org,
            first_seq: 1,
            last_seq: 0,
            last_hash: GENESIS_HASH,
        }
    }
}

/// A time range: from `from` (inclusive) to `to` (exclusive); `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRange {
    /// The first instant included.
    pub from: Option<DateTime<Utc>>,
    /// The first instant excluded.
    pub to: Option<DateTime<Utc>>,
}

impl AuditRange {
    /// The whole log.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// From `from` (inclusive) to `to` (exclusive).
    #[must_use]
    pub fn between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        Self { from, to }
    }

    /// Whether `time` is in the range.
    #[must_use]
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }
}

/// A page of an org's audit log: entries in the range with `seq` above `after_seq`, in
/// sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditQuery {
    /// The time range.
    pub range: AuditRange,
    /// Only entries after this one.
    pub after_seq: u64,
    /// At most this many (1 to 1000).
    pub limit: u32,
}

impl AuditQuery {
    /// The first `limit` entries of `range`.
    #[must_use]
    pub fn new(range: AuditRange, limit: u32) -> Self {
        Self {
            range,
            after_seq: 0,
            limit,
        }
    }

    /// The entries after `seq`.
    #[must_use]
    pub fn after(mut self, seq: u64) -> Self {
        self.after_seq = seq;
        self
    }
}

/// What is wrong at a broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkProblem {
    /// The entry's content or hashes were changed: its hash does not match its content, or
    /// its previous hash does not match the entry before it.
    Altered,
    /// The entry is missing (deleted): a gap in the sequence, or a missing first or last
    /// entry.
    Missing,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit chain broken at entry {seq} ({problem:?})")]
#[non_exhaustive]
pub struct BrokenLink {
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's id (`None` for a missing entry).
    pub entry_id: Option<Uuid>,
    /// What is wrong.
    pub problem: LinkProblem,
}

impl BrokenLink {
    fn altered(entry: &AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            entry_id: Some(entry.id),
            problem: LinkProblem::Altered,
        }
    }

    fn missing(seq: u64) -> Self {
        Self {
            seq,
            entry_id: None,
            problem: LinkProblem::Missing,
        }
    }
}

/// Checks entries one after the other, in sequence order.
#[derive(Debug)]
pub(crate) struct ChainCheck {
    last: Option<(u64, Hash)>,
}

impl ChainCheck {
    /// A check whose first entry must follow `anchor` (the entry before the range, or the
    /// head's start), when known.
    pub(crate) fn new(anchor: Option<(u64, Hash)>) -> Self {
        Self { last: anchor }
    }

    /// Checks the next entry.
    pub(crate) fn next(&mut self, entry: &AuditEntry) -> Result<(), BrokenLink> {
        if let Some((seq, hash)) = self.last {
            if entry.seq != seq + 1 {
                return Err(BrokenLink::missing(seq + 1));
            }
            if !same_hash(&entry.prev_hash, &hash) {
                return Err(BrokenLink::altered(entry));
            }
        }
        if !same_hash(&entry.computed_hash(), &entry.hash) {
            return Err(BrokenLink::altered(entry));
        }
        self.last = Some((entry.seq, entry.hash));
        Ok(())
    }

    /// Checks that the last entry seen is the head's last.
    pub(crate) fn finish(&self, head: &AuditHead) -> Result<(), BrokenLink> {
        match self.last {
            Some((seq, _)) if seq < head.last_seq => Err(BrokenLink::missing(seq + 1)),
            Some((seq, hash)) if seq == head.last_seq && !same_hash(&hash, &head.last_hash) => {
                Err(BrokenLink::missing(seq))
            }
            None if head.first_seq <= head.last_seq => Err(BrokenLink::missing(head.first_seq)),
            _ => Ok(()),
        }
    }

    /// The last entry checked.
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.last.map(|(seq, _)| seq)
    }
}

pub(crate) fn missing(seq: u64) -> BrokenLink {
    BrokenLink::missing(seq)
}

pub(crate) fn altered(entry: &AuditEntry) -> BrokenLink {
    BrokenLink::altered(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(prev: &AuditEntry) -> AuditEntry {
        AuditEntry::seal(
            prev.org_id,
            prev.seq + 1,
            prev.hash,
            prev.time,
            AuditRecord::new(Actor::System, "test"),
        )
    }

    #[test]
    fn canonical_content_sorts_keys_at_every_level() {
        let mut e = AuditEntry::seal(
            Uuid::nil(),
            1,
            GENESIS_HASH,
            "2026-03-14T12:00:00.123456Z".parse().unwrap(),
            AuditRecord::new(Actor::User(Uuid::nil()), "member.add")
                .detail(serde_json::json!({"z": 1, "a": {"y": [2, 1.5], "b": null}})),
        );
        e.id = Uuid::nil();
        let content = e.canonical_content();
        assert!(content.starts_with("{\"action\":\"member.add\",\"actor\":{\"id\""));
        assert!(content.contains("\"detail\":{\"a\":{\"b\":null,\"y\":[2,1.5]},\"z\":1}"));
        assert!(content.contains("\"time\":\"2026-03-14T12:00:00.123Z\""));
        assert_eq!(e.time.timestamp_subsec_micros(), 123_000);
    }

    #[test]
    fn a_chain_checks_and_names_its_first_broken_link() {
        let first = AuditEntry::seal(
            Uuid::new_v4(),
            1,
            GENESIS_HASH,
            Utc::now(),
            AuditRecord::new(Actor::System, "a"),
        );
        let second = entry(&first);
        let third = entry(&second);
        let head = AuditHead {
            org_id: first.org_id,
            first_seq: 1,
            last_seq: 3,
            last_hash: third.hash,
        };
        let mut check = ChainCheck::new(None);
        for e in [&first, &second, &third] {
            check.next(e).unwrap();
        }
        check.finish(&head).unwrap();

        let mut edited = second.clone();
        edited.action = "b".into();
        let mut check = ChainCheck::new(None);
        check.next(&first).unwrap();
        assert_eq!(
            check.next(&edited).unwrap_err(),
            BrokenLink::altered(&second)
        );

        let mut check = ChainCheck::new(None);
        check.next(&first).unwrap();
        assert_eq!(check.next(&third).unwrap_err(), BrokenLink::missing(2));

        let mut check = ChainCheck::new(None);
        check.next(&first).unwrap();
        check.next(&second).unwrap();
        assert_eq!(check.finish(&head).unwrap_err(), BrokenLink::missing(3));
    }
}
