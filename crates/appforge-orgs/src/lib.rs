//! Team workspaces: organizations, roles and permissions, invitations and seats, org API
//! keys, and a tamper-evident audit log.
//!
//! Every user keeps a personal space ([`Owner::User`]); an [`Organization`] is a shared one
//! ([`Owner::Org`]) whose members each have a [`Role`]. What a role may do is one table,
//! [`PERMISSIONS`]; [`Orgs`] checks it on every call and lets the store write the change and
//! its [`AuditEntry`] in one transaction.
//!
//! ```
//! use appforge_orgs::{Caller, MemoryOrgStore, NewApiKey, NewOrg, Orgs, Permission, Role};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_orgs::Result<()> {
//! let orgs = Orgs::new(MemoryOrgStore::new());
//! let (ada, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
//! let ada_caller = Caller::user(ada);
//!
//! // Ada creates a workspace with 2 seats and owns it.
//! let org = orgs.create_org(&ada_caller, NewOrg::new("Acme", "acme").seats(2)).await?;
//!
//! // She invites Bob as a viewer; the token is shown this once.
//! let invite = orgs.invite(&ada_caller, org.id, "bob@example.com", Role::Viewer).await?;
//! let bob_caller = Caller::user(bob);
//! orgs.accept_invitation(&bob_caller, invite.token.expose()).await?;
//!
//! // Bob may read but not generate; outsiders do not even see the org.
//! assert_eq!(orgs.authorize(&bob_caller, org.id, Permission::ReadApps).await?, Role::Viewer);
//! assert!(orgs.authorize(&bob_caller, org.id, Permission::Generate).await.unwrap_err().is_forbidden());
//! let outsider = Caller::user(uuid::Uuid::new_v4());
//! assert!(orgs.get_org(&outsider, org.id).await.unwrap_err().is_not_found());
//!
//! // Both seats are taken: a third invitation is refused.
//! assert!(orgs.invite(&ada_caller, org.id, "eve@example.com", Role::Member).await.unwrap_err().is_conflict());
//!
//! // A key for CI acts as the org with its role.
//! let key = orgs.create_api_key(&ada_caller, org.id, NewApiKey::new("CI", Role::Member)).await?;
//! let principal = orgs.authenticate(key.token.expose()).await?.expect("a valid key");
//! assert_eq!((principal.org_id, principal.role), (org.id, Role::Member));
//!
//! // Every step is in the org's audit chain, which verifies.
//! assert_eq!(orgs.verify_audit(org.id, appforge_orgs::AuditRange::all()).await?, 4);
//! # Ok(()) }
//! ```
//!
//! # Roles
//!
//! `viewer` reads the org's apps, versions, jobs and diffs; `member` also generates,
//! modifies, chats, publishes and deletes apps; `admin` also invites, removes and changes the
//! role of members up to admin, manages API keys, reads the audit log and changes settings;
//! `owner` also handles billing, SSO, deleting the org and transferring ownership. An actor
//! grants or acts on roles no higher than its own. An org always keeps an owner: removing or
//! demoting the last one is [`Error::LastOwner`], decided inside the store's transaction.
//!
//! # Seats and invitations
//!
//! Members plus open invitations (unaccepted, unrevoked, unexpired) never exceed the org's
//! seats ([`Orgs::set_seats`], the subscription quantity on a team plan): the count and the
//! insert are one atomic step, so of two invitations racing for the last seat exactly one
//! lands. An invitation's token (`afi_...`, 32 random bytes) is stored only as its SHA-256
//! hash, expires after 7 days by default, is used once and can be revoked.
//!
//! # Per-member daily cap
//!
//! An org may cap how many generations one member starts per day in its space
//! ([`Organization::member_daily_cap`], set by admins with [`Orgs::set_member_daily_cap`];
//! `None`, the default, leaves only the org's pooled quota). [`Orgs::admit`] is
//! [`Orgs::authorize`] answering also the cap that applies ([`Access`]): for a user the role
//! and the cap come from one store read ([`OrgStore::member_access`], one query joining the
//! membership and the org on SQL stores); an API key or the host acts as the org, not as a
//! member, and has no cap. The host counts the generations and enforces the cap.
//!
//! # The membership cache
//!
//! [`Orgs::admit`] answers members from a [`MembershipCache`] while a feed of every
//! process's changes is connected: on PostgreSQL, [`Orgs::watch_memberships`] (or
//! [`PgOrgStore::watch`]) listens on [`CHANGES_CHANNEL`], which the store notifies in the
//! transaction of every audited change of an org. Changes through the service drop the org's
//! entries before returning. Without a feed every check reads the store.
//!
//! # API keys
//!
//! `afk_<prefix>_<secret>`: the 12 hex character prefix finds the key, the SHA-256 of the
//! whole key is compared in constant time. A key has a role no higher than its creator's, an
//! optional expiry, a last-used time, and stops working the moment it is revoked.
//!
//! # Audit chain
//!
//! Each org's entries are numbered 1, 2, 3, ... and each stores
//! `hash = SHA-256(prev_hash || canonical content)` ([`AuditEntry::canonical_content`]: sorted
//! keys, no whitespace, times in RFC 3339 UTC with milliseconds). [`Orgs::verify_audit`]
//! names the first altered or missing entry ([`BrokenLink`]). A head row per org (first kept
//! and last sequence number, last hash) shows a deleted first or last entry. Retention
//! ([`Orgs::purge_audit_before`]) removes a prefix of the chain and moves the head's first
//! kept number: verification then starts from the first kept entry, whose stored previous
//! hash is taken as given. Someone able to rewrite every later entry and the head can forge
//! a consistent chain; export the head hash elsewhere to anchor it. Exports
//! ([`Orgs::export_audit`]) are JSON lines or CSV, read a page at a time.
//!
//! # Branding
//!
//! An org's [`Branding`] is a display name, a primary colour and a logo, set by admins
//! ([`Orgs::set_branding`], [`Orgs::set_logo`]) and read by members. The colour is `#rrggbb`
//! on which white text reaches the WCAG AA contrast ratio [`MIN_CONTRAST`] ([`Color`]); a
//! [`Logo`] is PNG, JPEG or WebP of at most [`MAX_LOGO_BYTES`], stored as given: the host
//! decodes and re-encodes it first so that only pixels are kept.
//!
//! # Stores
//!
//! [`MemoryOrgStore`], [`SqliteOrgStore`] (one `BEGIN IMMEDIATE` transaction per write) and
//! `PgOrgStore` (the org's row and its audit head locked with `SELECT ... FOR UPDATE`), or
//! [`AnyOrgStore`] chosen at run time. The SQL stores own the tables `orgs`, `org_members`,
//! `org_invitations`, `org_api_keys`, `org_branding`, `org_audit_log` and `org_audit_heads` (migration table
//! `_appforge_orgs_migrations`). Time comes from the [`SharedClock`](appforge_core::SharedClock)
//! given to `with_clock`. [`OrgStore`] is public: the conformance suite in `testing` checks
//! any implementation.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteOrgStore`], the embedded store |
//! | `postgres` | no | `PgOrgStore`, for many processes on one database |
//! | `testing` | no | `testing`: the conformance suite every store passes, and test hooks |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api_key;
mod audit;
mod branding;
mod cache;
mod error;
mod export;
mod invitation;
mod org;
mod role;
mod service;
mod store;
mod token;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use api_key::{ApiKey, ApiKeyPrincipal, CreatedApiKey, NewApiKey};
pub use audit::{
    Actor, AuditEntry, AuditHead, AuditQuery, AuditRange, AuditRecord, BrokenLink, GENESIS_HASH,
    LinkProblem, RequestInfo,
};
pub use branding::{
    Branding, Color, LOGO_MEDIA_TYPES, Logo, LogoInfo, MAX_DISPLAY_NAME_CHARS, MAX_LOGO_BYTES,
    MIN_CONTRAST,
};
pub use cache::{MAX_CACHED_MEMBERSHIPS, MembershipCache};
pub use error::{Error, Result};
pub use export::{AuditExport, ExportFormat};
pub use invitation::{CreatedInvitation, DEFAULT_INVITATION_TTL, Invitation};
pub use org::{MAX_NAME_CHARS, Member, MemberAccess, NewOrg, Organization, Owner, validate_slug};
pub use role::{PERMISSIONS, Permission, Role};
pub use service::{
    Access, Caller, LAST_USED_GRANULARITY, MAX_AUDIT_PAGE, Orgs, Principal, WatchHandle,
};
pub use store::OrgStore;
pub use store::any::AnyOrgStore;
pub use store::memory::MemoryOrgStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::{CHANGES_CHANNEL, PgOrgStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteOrgStore;
pub use token::Secret;
