//! khabar's own worker threads. The library never touches rayon's global pool or the process
//! environment: its parallel work runs in a rayon pool of the size the caller asks for
//! ([`TrainConfig::threads`](crate::TrainConfig::threads),
//! [`Classifier::with_threads`](crate::Classifier::with_threads)); by default one thread per
//! core. A host program's own pools are left as it built them.
//!
//! candle's CPU kernels are the one part sized elsewhere: candle 0.11 offers no call to size
//! them, and reads the environment instead (`CANDLE_NUM_THREADS` once, for its elementwise
//! kernels; `RAYON_NUM_THREADS`, then `/proc/cpuinfo`, on every matrix product). khabar leaves
//! the environment to the user and runs its matrix products itself (`model::ops::matmul`), on
//! the calling thread. Only the transformer and `bow` with an embedding width use candle's
//! kernels; the default `bow` model does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// The number of threads for a setting: `None` means one per core.
pub(crate) fn count(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// The pool of `threads` workers (`None`: one per core), made the first time it is asked for
/// and kept for the life of the process, so that repeated calls do not start threads anew.
pub(crate) fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let n = count(threads);
    if n == 0 {
        return Err(Error::config("threads", "must be at least 1"));
    }
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pool) = pools.get(&n) {
        return Ok(Arc::clone(pool));
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("khabar-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {n} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(n, Arc::clone(&pool));
    Ok(pool)
}

/// Runs `f` in the pool of `threads` workers: rayon's parallel iterators inside it use that
/// pool.
pub(crate) fn install<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool(threads)?.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work runs on a pool of the size asked for, not on rayon's global pool, and a size's pool
    /// is made once.
    #[test]
    fn work_runs_in_a_pool_of_the_size_asked_for() {
        for n in [1, 3] {
            let seen = install(Some(n), rayon::current_num_threads).unwrap();
            assert_eq!(seen, n);
            let name = install(Some(n), || std::thread::current().name().map(String::from));
            assert!(name.unwrap().unwrap().starts_with("khabar-"));
        }
        assert!(Arc::ptr_eq(
            &pool(Some(3)).unwrap(),
            &pool(Some(3)).unwrap()
        ));
        assert!(matches!(
            pool(Some(0)),
            Err(Error::Config {
                field: "threads",
                ..
            })
        ));
        assert_eq!(
            count(None),
            install(None, rayon::current_num_threads).unwrap()
        );
    }
}
