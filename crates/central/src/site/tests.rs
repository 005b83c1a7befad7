//! Scenarios on a virtual clock: what the allocator asks of the piles, step by step.

use super::*;

const MIN: Millis = 60_000;

fn pile(max_a: f64) -> PileLimits {
    PileLimits {
        connectors: 1,
        max_stack_level: 3,
        rate_units: RateUnits::Current,
        max_profiles: 4,
        max_a,
    }
}

fn arrival(pile: &str, transaction: i64, group: u32) -> Arrival {
    Arrival {
        pile: pile.to_string(),
        connector: 1,
        transaction,
        group,
    }
}

/// The limits a reaction sets, in order: (transaction, A).
fn limits(r: &Reaction) -> Vec<(i64, f64)> {
    r.commands.iter().map(|c| (c.transaction, c.amps)).collect()
}

/// Answers Accepted to every limit set, and to those the answers lead to.
fn confirm_all(a: &mut Allocator, now: Millis, mut r: Reaction) {
    while !r.commands.is_empty() {
        let mut next = Reaction::default();
        for c in r.commands {
            next.commands
                .extend(a.profile_accepted(now, c.transaction).commands);
        }
        r = next;
    }
}

/// A site of `capacity` A on one phase with piles p1..=pN of 32 A, fail-safe `failsafe`.
fn site(capacity: f64, failsafe: f64, piles: usize) -> Allocator {
    let site = Site::new(capacity, 1)
        .unwrap()
        .with_failsafe(failsafe)
        .unwrap();
    let mut alloc = Allocator::new(site);
    for i in 1..=piles {
        assert_eq!(
            alloc.join_pile(0, &format!("p{i}"), pile(32.0)),
            Reaction::default()
        );
    }
    alloc
}

#[test]
fn arrivals_share_equally_and_the_lowerings_are_confirmed_before_the_newcomer_is_raised() {
    let mut a = site(63.0, 0.0, 3);
    let r = a.arrive(1_000, arrival("p1", 1, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 32.0)]);
    assert_eq!(r.decisions[0].reason, Reason::PileMaximum);
    a.profile_accepted(1_500, 1);

    // B arrives: A goes to 31.5 first; B's raise waits for A's confirmation.
    let r = a.arrive(2_000, arrival("p2", 2, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 31.5)]);
    assert!(a.accounted_a() <= 63.0);
    let r = a.profile_accepted(2_500, 1);
    assert_eq!(limits(&r), vec![(2, 31.5)]);
    a.profile_accepted(3_000, 2);

    // C arrives: both lowered to 21 in one reaction, C raised once both are confirmed.
    let r = a.arrive(4_000, arrival("p3", 3, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 21.0), (2, 21.0)]);
    assert_eq!(limits(&a.profile_accepted(4_100, 1)), vec![]);
    let r = a.profile_accepted(4_200, 2);
    assert_eq!(limits(&r), vec![(3, 21.0)]);
    assert_eq!(r.decisions[0].reason, Reason::Share { group: 0, among: 3 });
    assert_eq!(
        r.decisions[0].why(),
        "accepted: equal share among 3 sessions of group 0"
    );
    a.profile_accepted(4_300, 3);
    let granted: Vec<f64> = a.sessions().iter().map(|s| s.granted_a).collect();
    assert_eq!(granted, vec![21.0, 21.0, 21.0]);
    assert_eq!(a.accounted_a(), 63.0);
    // Nothing changes: nothing is sent.
    assert_eq!(limits(&a.tick(10 * MIN)), vec![]);
}

#[test]
fn a_departure_raises_the_others_once_their_settling_time_has_passed() {
    let mut a = site(63.0, 0.0, 3);
    for (t, p) in [(1, "p1"), (2, "p2"), (3, "p3")] {
        let r = a.arrive(0, arrival(p, t, 0)).unwrap();
        confirm_all(&mut a, 0, r);
    }
    assert_eq!(limits(&a.tick(0)), vec![]);
    assert!(a.sessions().iter().all(|s| s.granted_a == 21.0));
    // The last change was at 0: a raise waits for the settling time (60 s).
    assert_eq!(limits(&a.depart(10_000, 3)), vec![]);
    assert_eq!(a.next_tick(), Some(60_000));
    let r = a.tick(60_000);
    assert_eq!(limits(&r), vec![(1, 31.5), (2, 31.5)]);
    assert!(a.accounted_a() <= 63.0);
}

#[test]
fn a_raise_the_pile_refuses_leaves_its_share_to_the_others_after_their_settling_time() {
    let mut a = site(36.0, 0.0, 3);
    for (t, p) in [(1, "p1"), (2, "p2")] {
        let r = a.arrive(0, arrival(p, t, 0)).unwrap();
        confirm_all(&mut a, 0, r);
    }
    // C arrives: A and B go to 12 A first, C's raise follows their confirmations.
    let r = a.arrive(1_000, arrival("p3", 3, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 12.0), (2, 12.0)]);
    assert_eq!(limits(&a.profile_accepted(1_100, 1)), vec![]);
    assert_eq!(limits(&a.profile_accepted(1_200, 2)), vec![(3, 12.0)]);
    // C's pile refuses: C is held at what it had (the fail-safe, 0 A). Its share goes to A and
    // B, but not within the settling time of their last change (at 1 s).
    let r = a.profile_rejected(1_300, 3);
    assert_eq!(limits(&r), vec![]);
    assert!(r
        .decisions
        .iter()
        .any(|d| d.transaction == 3 && d.reason == Reason::Rejected && d.granted_a == 0.0));
    assert_eq!(a.next_tick(), Some(61_000));
    assert_eq!(limits(&a.tick(60_999)), vec![]);
    let r = a.tick(61_000);
    assert_eq!(limits(&r), vec![(1, 18.0), (2, 18.0)]);
    confirm_all(&mut a, 61_500, r);
    assert!(a.accounted_a() <= 36.0);
    // Then nothing more is sent.
    assert_eq!(limits(&a.tick(121_000)), vec![]);
    assert_eq!(limits(&a.tick(10 * MIN)), vec![]);
}

#[test]
fn an_ev_that_draws_less_than_offered_frees_the_rest_after_the_settling_time_and_gets_it_back() {
    let mut a = site(63.0, 0.0, 3);
    for (t, p) in [(1, "p1"), (2, "p2"), (3, "p3")] {
        let r = a.arrive(0, arrival(p, t, 0)).unwrap();
        confirm_all(&mut a, 0, r);
    }
    assert_eq!(a.tick(0).commands.len(), 0);
    // A draws 10 A of its 21: nothing before the settling time.
    assert_eq!(limits(&a.measure(5_000, 1, &[10.0])), vec![]);
    assert_eq!(limits(&a.measure(30_000, 1, &[9.8, 10.0, 9.9])), vec![]);
    assert_eq!(a.next_tick(), Some(60_000));
    // Still low at 65 s: capped at 11 A; the others get 26 each once A's lowering is confirmed.
    let r = a.tick(65_000);
    assert_eq!(limits(&r), vec![(1, 11.0)]);
    assert_eq!(r.decisions[0].reason, Reason::DrawsLess { cap: 11.0 });
    let r = a.profile_accepted(65_500, 1);
    assert_eq!(limits(&r), vec![(2, 26.0), (3, 26.0)]);
    a.profile_accepted(66_000, 2);
    a.profile_accepted(66_000, 3);
    assert_eq!(a.accounted_a(), 63.0);
    // A draws again up to its limit: it gets its share back, after the others are lowered.
    let r = a.measure(200_000, 1, &[10.8]);
    assert_eq!(limits(&r), vec![(2, 21.0), (3, 21.0)]);
    a.profile_accepted(200_500, 2);
    let r = a.profile_accepted(200_500, 3);
    assert_eq!(limits(&r), vec![(1, 21.0)]);
}

#[test]
fn a_schedule_that_lowers_the_capacity_is_met_before_it_is_in_force() {
    // 17:00-20:00 UTC at 32 A.
    let schedule = Schedule::new(
        Cycle::Daily,
        vec![Period {
            start: 17 * 60,
            end: 20 * 60,
            limit_a: 32.0,
        }],
        false,
        63.0,
    )
    .unwrap();
    let site = Site::new(63.0, 1).unwrap().with_schedule(schedule);
    let mut a = Allocator::new(site);
    a.join_pile(0, "p1", pile(32.0));
    a.join_pile(0, "p2", pile(32.0));
    let day = 20_000 * 86_400_000; // a midnight UTC
    let t0 = day + 16 * 60 * MIN;
    let r = a.arrive(t0, arrival("p1", 1, 0)).unwrap();
    confirm_all(&mut a, t0, r);
    let r = a.arrive(t0, arrival("p2", 2, 0)).unwrap();
    confirm_all(&mut a, t0, r);
    assert_eq!(a.accounted_a(), 63.0);
    let boundary = day + 17 * 60 * MIN;
    assert_eq!(a.next_tick(), Some(t0 + a.site().settle()));
    a.tick(t0 + a.site().settle());
    assert_eq!(a.next_tick(), Some(boundary - LEAD));
    let r = a.tick(boundary - LEAD);
    assert_eq!(limits(&r), vec![(1, 16.0), (2, 16.0)]);
    a.profile_accepted(boundary - LEAD + 2_000, 1);
    a.profile_accepted(boundary - LEAD + 2_000, 2);
    assert!(a.accounted_a() <= a.site().capacity_at(boundary));
    assert_eq!(a.site().capacity_at(boundary), 32.0);
    // At 20:00 the capacity comes back, and so do the shares.
    let end = day + 20 * 60 * MIN;
    assert_eq!(a.site().lowest_between(boundary, end - 1), 32.0);
    let r = a.tick(end);
    assert_eq!(limits(&r), vec![(1, 31.5), (2, 31.5)]);
}

#[test]
fn a_pile_that_rejects_a_lowering_is_held_at_its_confirmed_limit_and_the_others_get_the_rest() {
    let mut a = site(63.0, 6.0, 2);
    a.arrive(0, arrival("p1", 1, 0)).unwrap();
    // The other connector is idle: 6 A reserved for it, so A gets its maximum.
    a.profile_accepted(0, 1);
    assert_eq!(a.accounted_a(), 32.0 + 6.0);
    let r = a.arrive(1_000, arrival("p2", 2, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 31.5)]);
    // p1 rejects: A stays at 32 (never counted at zero), B gets 31.
    let r = a.profile_rejected(1_500, 1);
    assert_eq!(limits(&r), vec![(2, 31.0)]);
    assert_eq!(r.decisions[0].transaction, 1);
    assert_eq!(r.decisions[0].reason, Reason::Rejected);
    assert_eq!(r.decisions[0].granted_a, 32.0);
    a.profile_accepted(2_000, 2);
    assert_eq!(a.accounted_a(), 63.0);
    // No more profiles for p1 until it reconnects.
    assert_eq!(limits(&a.tick(10 * MIN)), vec![]);
}

#[test]
fn a_pile_that_goes_offline_is_accounted_at_its_fail_safe_and_its_share_is_not_given_away() {
    let mut a = site(16.0, 0.0, 3);
    let mut a_fs = {
        let site = Site::new(30.0, 1).unwrap().with_failsafe(6.0).unwrap();
        let mut alloc = Allocator::new(site);
        for p in ["p1", "p2", "p3"] {
            alloc.join_pile(0, p, pile(32.0));
        }
        alloc
    };
    // Failsafe 6 A on 30 A with 3 connectors: two sessions at 12 each (6 A kept for the idle one).
    let r = a_fs.arrive(0, arrival("p1", 1, 0)).unwrap();
    confirm_all(&mut a_fs, 0, r);
    let r = a_fs.arrive(0, arrival("p2", 2, 0)).unwrap();
    confirm_all(&mut a_fs, 0, r);
    assert_eq!(limits(&a_fs.tick(MIN)), vec![]);
    assert_eq!(
        a_fs.sessions()
            .iter()
            .map(|s| s.granted_a)
            .collect::<Vec<_>>(),
        vec![12.0, 12.0]
    );
    let r = a_fs.pile_offline(2 * MIN, "p1");
    assert_eq!(limits(&r), vec![]);
    assert_eq!(r.decisions[0].reason, Reason::Offline);
    assert_eq!(r.decisions[0].granted_a, 12.0);
    assert!(a_fs.accounted_a() <= 30.0);
    // It comes back: managed again, its limit asked again (its doubt counts until confirmed).
    let r = a_fs.pile_online(3 * MIN, "p1");
    assert_eq!(limits(&r), vec![(1, 12.0)]);
    a_fs.profile_accepted(3 * MIN, 1);
    assert_eq!(a_fs.accounted_a(), 30.0);

    // A queued session (0 A confirmed) on a pile that goes offline counts at the fail-safe
    // it was reserved.
    for (t, p) in [(1, "p1"), (2, "p2"), (3, "p3")] {
        let r = a.arrive(0, arrival(p, t, 0)).unwrap();
        confirm_all(&mut a, 0, r);
    }
    assert!(a.sessions()[2].queued);
    a.pile_offline(MIN, "p3");
    assert!(a.accounted_a() <= 16.0);
}

#[test]
fn a_capacity_below_the_sum_of_minimums_queues_first_come_first_served() {
    let mut a = site(16.0, 0.0, 4);
    let r = a.arrive(0, arrival("p1", 1, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 16.0)]);
    a.profile_accepted(0, 1);
    let r = a.arrive(1_000, arrival("p2", 2, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 8.0)]);
    let r = a.profile_accepted(1_000, 1);
    assert_eq!(limits(&r), vec![(2, 8.0)]);
    a.profile_accepted(1_000, 2);
    // Three would need 18 A: C waits at its fail-safe of 0 A (nothing to send), then D.
    let r = a.arrive(2_000, arrival("p3", 3, 0)).unwrap();
    assert_eq!(limits(&r), vec![]);
    assert_eq!(r.decisions[0].reason, Reason::Queued { ahead: 0 });
    let r = a.arrive(3_000, arrival("p4", 4, 0)).unwrap();
    assert_eq!(r.decisions[0].reason, Reason::Queued { ahead: 1 });
    let queued: Vec<bool> = a.sessions().iter().map(|s| s.queued).collect();
    assert_eq!(queued, vec![false, false, true, true]);
    // A leaves: C starts at once (not D).
    let r = a.depart(4_000, 1);
    assert_eq!(limits(&r), vec![(3, 8.0)]);
    assert!(
        a.sessions()
            .iter()
            .find(|s| s.transaction == 4)
            .unwrap()
            .queued
    );
    // A higher group is served first: E (group 1) takes the place of C, the last admitted.
    a.profile_accepted(61_000, 3);
    // B keeps the minimum and E, served first, the rest.
    let r = a.arrive(70_000, arrival("p1", 5, 1)).unwrap();
    assert_eq!(limits(&r), vec![(2, 6.0), (3, 0.0)]);
    assert!(
        a.sessions()
            .iter()
            .find(|s| s.transaction == 3)
            .unwrap()
            .queued
    );
    a.profile_accepted(70_500, 2);
    let r = a.profile_accepted(70_500, 3);
    assert_eq!(limits(&r), vec![(5, 10.0)]);
    a.profile_accepted(71_000, 5);
    assert_eq!(a.accounted_a(), 16.0);
}

#[test]
fn a_pile_that_takes_only_power_gets_its_limit_in_watts_at_its_max_stack_level() {
    let site = Site::from_kw(22.08, 3).unwrap();
    assert!((site.capacity_a() - 32.0).abs() < 1e-9);
    let mut a = Allocator::new(site);
    a.join_pile(
        0,
        "p1",
        PileLimits {
            connectors: 2,
            max_stack_level: 8,
            rate_units: RateUnits::parse("Power"),
            max_profiles: 3,
            max_a: 16.0,
        },
    );
    let r = a.arrive(0, arrival("p1", 1, 0)).unwrap();
    let c = &r.commands[0];
    assert_eq!(
        (c.unit, c.limit, c.stack_level, c.phases),
        (Unit::W, 16.0 * 230.0 * 3.0, 8, 3)
    );
    // Too few profiles for the default and one per connector: not managed, held at its max.
    let mut b = Allocator::new(Site::new(32.0, 1).unwrap());
    let mut limits_p = pile(16.0);
    limits_p.max_profiles = 1;
    b.join_pile(0, "p1", limits_p);
    let r = b.arrive(0, arrival("p1", 1, 0)).unwrap();
    assert!(r.commands.is_empty());
    assert_eq!(r.decisions[0].reason, Reason::Unmanaged);
    assert_eq!(b.accounted_a(), 16.0);
}

#[test]
fn bad_terms_are_refused_with_the_reason() {
    let err = |r: Result<Site, SiteError>| r.unwrap_err().to_string();
    assert_eq!(err(Site::new(32.0, 2)), "phases must be 1 or 3, not 2");
    assert!(err(Site::new(32.0, 1).unwrap().with_min(5.0)).contains("IEC 61851"));
    assert!(err(Site::new(32.0, 1).unwrap().with_min(40.0)).contains("below min_a"));
    assert!(err(Site::new(4.0, 1)).contains("below min_a"));
    assert!(err(Site::new(32.0, 1).unwrap().with_failsafe(-1.0)).contains("failsafe_a"));
    let p = |start, end, limit_a| Period {
        start,
        end,
        limit_a,
    };
    let overlap = Schedule::new(
        Cycle::Daily,
        vec![p(600, 700, 10.0), p(650, 800, 10.0)],
        false,
        32.0,
    );
    assert_eq!(
        overlap.unwrap_err().to_string(),
        "schedule periods 0 and 1 overlap"
    );
    let gap = Schedule::new(
        Cycle::Daily,
        vec![p(0, 600, 10.0), p(700, 1440, 20.0)],
        true,
        32.0,
    );
    assert_eq!(
        gap.unwrap_err().to_string(),
        "schedule covers the whole day but has a gap from minute 600 to minute 700"
    );
    let short = Schedule::new(Cycle::Weekly, vec![p(0, 10_000, 10.0)], true, 32.0);
    assert!(short
        .unwrap_err()
        .to_string()
        .contains("gap from minute 10000 to minute 10080"));
    let past = Schedule::new(Cycle::Daily, vec![p(1400, 1500, 10.0)], false, 32.0);
    assert!(past
        .unwrap_err()
        .to_string()
        .starts_with("schedule period 0: end 1500"));
    let above = Schedule::new(Cycle::Daily, vec![p(0, 60, 40.0)], false, 32.0);
    assert!(above.unwrap_err().to_string().contains("limit_a 40"));
    assert!(Schedule::new(
        Cycle::Daily,
        vec![p(0, 600, 10.0), p(600, 1440, 20.0)],
        true,
        32.0
    )
    .is_ok());
    let site = Site::new(32.0, 1).unwrap().with_failsafe(6.0).unwrap();
    assert!(site.check_connectors(5).is_ok());
    assert!(site
        .check_connectors(6)
        .unwrap_err()
        .to_string()
        .contains("36 A"));
}

#[test]
fn a_weekly_schedule_applies_on_its_day() {
    // Monday 08:00-09:00 UTC at 10 A.
    let s = Schedule::new(
        Cycle::Weekly,
        vec![Period {
            start: 8 * 60,
            end: 9 * 60,
            limit_a: 10.0,
        }],
        false,
        32.0,
    )
    .unwrap();
    let site = Site::new(32.0, 1).unwrap().with_schedule(s);
    // 2024-01-01 was a Monday.
    let monday = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(8, 30, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!(site.capacity_at(monday), 10.0);
    assert_eq!(site.capacity_at(monday + 86_400_000), 32.0);
    assert_eq!(site.next_change(monday), Some(monday + 30 * MIN));
}

#[test]
fn new_terms_lower_the_sessions_at_once_and_raise_them_after_their_settling_time() {
    let mut a = site(63.0, 0.0, 3);
    for (t, p) in [(1, "p1"), (2, "p2"), (3, "p3")] {
        let r = a.arrive(0, arrival(p, t, 0)).unwrap();
        confirm_all(&mut a, 0, r);
    }
    // The capacity lowered to 30 A: all three go to 10 A in one reaction.
    let lower = Site::new(30.0, 1).unwrap();
    let r = a.change_site(5_000, lower);
    assert_eq!(limits(&r), vec![(1, 10.0), (2, 10.0), (3, 10.0)]);
    assert!(r.decisions.iter().all(|d| d.trigger == Trigger::Terms));
    confirm_all(&mut a, 5_100, r);
    assert_eq!(a.accounted_a(), 30.0);
    // Raised again to 45 A: nothing within the settling time of the lowering, then 15 A each.
    let r = a.change_site(6_000, Site::new(45.0, 1).unwrap());
    assert_eq!(limits(&r), vec![]);
    assert_eq!(
        limits(&a.tick(65_000)),
        vec![(1, 15.0), (2, 15.0), (3, 15.0)]
    );
}

#[test]
fn sessions_that_arrive_together_are_divided_in_one_plan() {
    // One by one, the first is given the pile's maximum, then lowered for the next.
    let mut a = site(63.0, 0.0, 3);
    let r = a.arrive(0, arrival("p1", 1, 0)).unwrap();
    assert_eq!(limits(&r), vec![(1, 32.0)]);
    // Together (a node taking the site over finds three sessions running): 21 A each, at once.
    let mut a = site(63.0, 0.0, 3);
    let together = vec![
        arrival("p1", 1, 0),
        arrival("p2", 2, 0),
        arrival("p3", 3, 0),
        arrival("p9", 9, 0),
    ];
    let (r, refused) = a.arrive_all(0, together);
    assert_eq!(limits(&r), vec![(1, 21.0), (2, 21.0), (3, 21.0)]);
    assert_eq!(refused, vec![(9, AllocError::UnknownPile("p9".into()))]);
    confirm_all(&mut a, 100, r);
    assert_eq!(a.accounted_a(), 63.0);
}
