//! The access log: one line per request, written off the request path.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// Lines go to a writer thread that batches them onto stderr, so request
/// threads never wait on the terminal or a pipe. If stderr cannot keep up,
/// lines are dropped and counted (said in the next line written).
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<mpsc::SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    pub fn stderr() -> AccessLog {
        let (tx, rx) = mpsc::sync_channel::<String>(8192);
        let dropped = Arc::new(AtomicU64::new(0));
        let d2 = dropped.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(more.as_bytes());
                    }
                    let lost = d2.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        let _ =
                            writeln!(out, "access log: {lost} line(s) dropped (stderr too slow)");
                    }
                    let _ = out.flush();
                }
                let _ = out.flush();
            })
            .ok();
        AccessLog {
            tx: Some(tx),
            dropped,
        }
    }

    /// A log that writes nothing (unit tests).
    pub fn none() -> AccessLog {
        AccessLog {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn line(&self, mut s: String) {
        if let Some(tx) = &self.tx {
            s.push('\n');
            if tx.try_send(s).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
