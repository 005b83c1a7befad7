//! The open-file limit: a fleet holds a socket per pile, a central one per connection.

/// Raises the open-file limit to `needed` (the hard limit too, which root may raise), or as
/// far as it goes, and says so when that is not enough.
pub fn raise_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            eprintln!("cannot read the open-file limit");
            return;
        }
        if limit.rlim_cur >= needed {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: needed,
            rlim_max: limit.rlim_max.max(needed),
        };
        let most = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return;
        }
        if libc::setrlimit(libc::RLIMIT_NOFILE, &most) == 0 {
            limit = most;
        }
    }
    eprintln!(
        "the open-file limit is {} and cannot be raised to {needed}: fewer connections will \
         open (raise it with ulimit -n, or run as root)",
        limit.rlim_cur
    );
}
