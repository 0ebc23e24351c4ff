//! [`OwnThread`]: the rule "a turn runs on a thread of its own", in the
//! signature of [`super::run_turn`].

use std::future::Future;
use std::marker::PhantomData;

/// Proof that the code holding it runs on a thread of its own, blocked on
/// one future: a chat turn does synchronous SQLite work (state.db,
/// users.db, events.db, with busy retries that sleep), which must neither
/// stall a runtime's async workers nor take the small blocking pool that
/// everyone else's reads use. The only ways to get one are the two
/// `block_on`s below, and tokio refuses both on an async worker (it panics:
/// "Cannot start a runtime from within a runtime"), so a turn cannot be
/// awaited by a request handler. It is neither `Send` nor `Sync`: it cannot
/// be taken to another thread, and a future that holds it cannot be
/// `tokio::spawn`ed onto the workers.
#[derive(Clone, Copy, Debug)]
pub struct OwnThread(PhantomData<*const ()>);

impl OwnThread {
    /// Run `make(proof)` on this thread with `rt` (a multi-thread runtime's
    /// handle, whose workers drive the I/O meanwhile: `serve`'s turn threads).
    pub fn block_on_handle<F: Future>(
        rt: &tokio::runtime::Handle,
        make: impl FnOnce(OwnThread) -> F,
    ) -> F::Output {
        rt.block_on(make(OwnThread(PhantomData)))
    }

    /// Run `make(proof)` on this thread's own runtime (the CLI's
    /// current-thread runtime, which only `Runtime::block_on` drives).
    pub fn block_on_runtime<F: Future>(
        rt: &tokio::runtime::Runtime,
        make: impl FnOnce(OwnThread) -> F,
    ) -> F::Output {
        rt.block_on(make(OwnThread(PhantomData)))
    }
}

#[cfg(test)]
mod tests {
    use super::OwnThread;

    /// On an async worker the proof cannot be had: tokio refuses to block.
    #[test]
    fn an_async_worker_cannot_get_one() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        assert!(OwnThread::block_on_handle(&handle, |_| async { true }));
        let refused = rt.block_on(async move {
            tokio::spawn(async move {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    OwnThread::block_on_handle(&handle, |_| async {})
                }))
                .is_err()
            })
            .await
            .unwrap()
        });
        assert!(refused, "block_on on a worker must panic");
    }
}
