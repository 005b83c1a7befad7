//! The connector status transitions OCPP 1.6 allows (ED2 §4.9 with ERR 3.20).

use ocpp::ChargePointStatus as S;

/// Whether a connector (id > 0) may go from `from` to `to`. The same status is always allowed.
pub fn allowed(from: &S, to: &S) -> bool {
    use S::*;
    if from == to {
        return true;
    }
    match from {
        Available => matches!(
            to,
            Preparing | Charging | SuspendedEv | SuspendedEvse | Reserved | Unavailable | Faulted
        ),
        Preparing => matches!(
            to,
            Available | Charging | SuspendedEv | SuspendedEvse | Finishing | Faulted
        ),
        Charging => matches!(
            to,
            Available | SuspendedEv | SuspendedEvse | Finishing | Unavailable | Faulted
        ),
        SuspendedEv => matches!(
            to,
            Available | Charging | SuspendedEvse | Finishing | Unavailable | Faulted
        ),
        SuspendedEvse => matches!(
            to,
            Available | Charging | SuspendedEv | Finishing | Unavailable | Faulted
        ),
        Finishing => matches!(to, Available | Preparing | Unavailable | Faulted),
        Reserved => matches!(to, Available | Preparing | Unavailable | Faulted),
        Unavailable => matches!(
            to,
            Available | Preparing | Charging | SuspendedEv | SuspendedEvse | Faulted
        ),
        Faulted => !matches!(to, Unrecognized(_)),
        Unrecognized(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_three_transitions() {
        let all: Vec<S> = S::ALL.to_vec();
        let n = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (a, b)))
            .filter(|(a, b)| a != b && allowed(a, b))
            .count();
        assert_eq!(n, 53);
        assert!(!allowed(&S::Preparing, &S::Unavailable));
        assert!(allowed(&S::Preparing, &S::Finishing));
        assert!(!allowed(&S::Available, &S::Finishing));
    }
}
