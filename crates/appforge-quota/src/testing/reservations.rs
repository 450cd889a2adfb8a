//! Reservations: settling, refunds with tokens, expiry, and held reservations.

use std::time::Duration;

use appforge_core::Clock;
use uuid::Uuid;

use super::{Backend, Fixture, TIMEOUT};
use crate::{Admission, Error, ReservationId, ReservationState, Resource, Settlement, UsageStore};

/// Expired reservations are released.
pub async fn expired_reservations_are_released<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(f.grant(user).await);
    }
    f.deny(user).await;
    f.clock.advance(TIMEOUT - Duration::from_millis(1));
    f.deny(user).await;
    f.clock.advance(Duration::from_millis(1));
    // Released lazily by the next reservation.
    let fresh = f.grant(user).await;
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 1);
    let err = f.quota.commit(held[0].id, 100).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadySettled {
                state: ReservationState::Expired,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        f.quota.refund(held[1].id).await.unwrap(),
        Settlement::AlreadyReleased
    );
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 0);

    // Released by the sweep, for reports.
    let other = Uuid::new_v4();
    f.grant(other).await;
    f.grant(other).await;
    f.clock.advance(TIMEOUT);
    let report = f.quota.reset_expired().await.unwrap();
    assert_eq!(report.released, 3, "two of `other` and `fresh`");
    assert_eq!(f.quota.status(other).await.unwrap().daily.used, 0);
    assert_eq!(
        f.quota.refund(fresh.id).await.unwrap(),
        Settlement::AlreadyReleased
    );
}

/// A refund gives back what it held, chat or generation, and may record the tokens the work
/// spent: once, however often it is repeated.
pub async fn refunds_give_back_the_count_and_may_keep_tokens<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let generation = f.grant(user).await;
    let Admission::Granted(chat) = f.chat(user).await else {
        panic!("granted");
    };
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 1));
    assert_eq!(
        f.quota
            .refund_with_tokens(generation.id, 700)
            .await
            .unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota
            .refund_with_tokens(generation.id, 700)
            .await
            .unwrap(),
        Settlement::AlreadyDone
    );
    assert_eq!(f.quota.refund(chat.id).await.unwrap(), Settlement::Settled);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!(
        (status.daily.used, status.chat.used, status.tokens.used),
        (0, 0, 700),
        "counts given back, the spent tokens kept once"
    );
    assert!(matches!(
        f.quota.commit(generation.id, 1).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Refunded,
            ..
        })
    ));
    assert_eq!(f.store_usage(user).await.total_tokens, 700);
}

/// Tokens of attempts that are retried are recorded while the reservation stays pending; the
/// commit adds the last attempt's.
pub async fn tokens_of_each_attempt_are_recorded<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let r = f.grant(user).await;
    f.quota.record_tokens(r.id, 100).await.unwrap();
    f.quota.record_tokens(r.id, 50).await.unwrap();
    f.quota.record_tokens(r.id, 0).await.unwrap();
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.tokens.used), (1, 150));
    assert_eq!(f.quota.commit(r.id, 25).await.unwrap(), Settlement::Settled);
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 175);
    assert!(matches!(
        f.quota.record_tokens(r.id, 10).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Committed,
            ..
        })
    ));
    assert!(
        f.quota
            .record_tokens(ReservationId::new(), 10)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(f.quota.status(user).await.unwrap().tokens.used, 175);
}

/// A held reservation lives as long as its work: the timeout, the sweep and the user's next
/// reservations leave it pending, and it settles when the work ends.
pub async fn held_reservations_never_expire<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let jobs: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut held = Vec::new();
    for job in &jobs {
        let r = f.grant(user).await;
        f.quota.hold(r.id, *job).await.unwrap();
        f.quota.hold(r.id, *job).await.unwrap();
        held.push(r);
    }
    let started = f.clock.now();
    f.clock.advance(TIMEOUT * 3);
    assert_eq!(f.quota.reset_expired().await.unwrap().released, 0);
    let status = f.deny(user).await;
    assert_eq!(status.daily.used, 5, "the held slots stay taken");

    let listed = f.quota.held(f.clock.now(), None, 100).await.unwrap();
    let mut holders: Vec<Uuid> = listed.iter().map(|h| h.holder).collect();
    holders.sort_unstable();
    let mut expected = jobs.clone();
    expected.sort_unstable();
    assert_eq!(holders, expected);
    assert!(listed.iter().all(|h| h.user == user
        && h.resource == Resource::Generation
        && h.cost == 1
        && h.created_at == started));
    assert!(f.quota.held(started, None, 100).await.unwrap().is_empty());
    let page = f.quota.held(f.clock.now(), None, 2).await.unwrap();
    let rest = f
        .quota
        .held(f.clock.now(), Some(page[1].id), 100)
        .await
        .unwrap();
    assert_eq!((page.len(), rest.len()), (2, 3));
    assert!(rest.iter().all(|h| h.id > page[1].id));

    // The work ends: settled as usual.
    assert_eq!(
        f.quota.commit(held[0].id, 40).await.unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota.refund(held[1].id).await.unwrap(),
        Settlement::Settled
    );
    assert_eq!(
        f.quota.held(f.clock.now(), None, 100).await.unwrap().len(),
        3
    );
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.tokens.used), (4, 40));

    // An unheld reservation still expires, and cannot be held once it has.
    let other = Uuid::new_v4();
    let late = f.grant(other).await;
    f.clock.advance(TIMEOUT);
    assert!(matches!(
        f.quota.hold(late.id, Uuid::new_v4()).await,
        Err(Error::AlreadySettled {
            state: ReservationState::Expired,
            ..
        })
    ));
    assert_eq!(f.quota.status(other).await.unwrap().daily.used, 0);
    assert!(
        f.quota
            .hold(ReservationId::new(), Uuid::new_v4())
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A reservation asked held ([`ReserveRequest::held_by`](crate::ReserveRequest::held_by)) is
/// held from the start, as if held in the same step: listed with its holder, never released
/// by the timeout or a sweep, settled as usual when its work ends.
pub async fn reservations_can_be_held_from_the_start<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let (user, job) = (Uuid::new_v4(), Uuid::new_v4());
    let catalogue = f.quota.catalogue();
    let now = f.clock.now();
    let id = ReservationId::for_user(user);
    let request = crate::ReserveRequest::new(id, user, 1, now).held_by(job);
    let cx = crate::StoreContext::new(now, crate::Windows::default(), &catalogue);
    let outcome = f.quota.store().reserve(cx, request).await.unwrap();
    assert_eq!(outcome.refused_by, None);
    assert_eq!(outcome.usage.daily_generations, 1);

    f.clock.advance(TIMEOUT * 3);
    assert_eq!(f.quota.reset_expired().await.unwrap().released, 0);
    let held: Vec<(ReservationId, Uuid)> = f
        .quota
        .held(f.clock.now(), None, 10)
        .await
        .unwrap()
        .iter()
        .map(|h| (h.id, h.holder))
        .collect();
    assert_eq!(held, [(id, job)]);
    assert_eq!(f.quota.status(user).await.unwrap().daily.used, 1);

    assert_eq!(f.quota.commit(id, 30).await.unwrap(), Settlement::Settled);
    assert!(
        f.quota
            .held(f.clock.now(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.tokens.used), (1, 30));
}

/// An expired chat reservation gives back a chat message, not a generation.
pub async fn expired_chat_messages_are_released<S: UsageStore>(backend: Backend<S>) {
    let f = Fixture::new(backend, "2026-03-14T12:00:00Z").await;
    let user = Uuid::new_v4();
    let generation = f.grant(user).await;
    f.quota.hold(generation.id, Uuid::new_v4()).await.unwrap();
    for _ in 0..3 {
        assert!(f.chat(user).await.is_granted());
    }
    f.clock.advance(TIMEOUT);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 0));
    for _ in 0..2 {
        assert!(f.chat(user).await.is_granted());
    }
    f.clock.advance(TIMEOUT);
    assert_eq!(f.quota.reset_expired().await.unwrap().released, 2);
    let status = f.quota.status(user).await.unwrap();
    assert_eq!((status.daily.used, status.chat.used), (1, 0));
}
