//! `khabar serve`: the library's HTTP server ([`khabar::serve`]) on a tokio runtime, stopped by
//! SIGTERM or Ctrl-C once the requests in flight are answered.

use std::time::Duration;

use khabar::serve::ServeConfig;
use khabar::{Error, Result};

use super::args::ServeArgs;
use super::{check_threads, load_chosen};

pub fn serve(a: ServeArgs) -> Result<()> {
    check_threads(a.threads)?;
    if a.workers == Some(0) {
        return Err(Error::Usage("--workers must be at least 1".into()));
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(Error::Usage(format!(
            "--timeout must be a number of seconds over 0 (got {})",
            a.timeout
        )));
    }
    for (name, value) in [
        ("--max-body-bytes", a.max_body_bytes),
        ("--max-batch", a.max_batch),
    ] {
        if value == 0 {
            return Err(Error::Usage(format!("{name} must be at least 1")));
        }
    }
    if a.model.bundle.encoder.is_some() && a.model.bundle.model.is_none() {
        return Err(Error::Usage(
            "--encoder applies to a model trained with that encoder: give its --model".into(),
        ));
    }
    let config = ServeConfig {
        max_body_bytes: a.max_body_bytes,
        max_batch: a.max_batch,
        workers: a.workers.unwrap_or(ServeConfig::default().workers),
        queue: a.queue,
        timeout: Duration::from_secs_f64(a.timeout),
    };
    let name = local_name(&a.model.bundle.model);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(config.workers + 4)
        .thread_name("khabar-http")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the server's runtime: {e}")))?;
    let address = a.addr.clone();
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {address}: {e}")))?;
        let local = listener.local_addr().map_err(|e| Error::Io {
            path: address.clone().into(),
            source: e,
        })?;
        eprintln!("listening on http://{local} (loading the model; GET /health says when ready)");
        let (model, threads) = (a.model, a.threads);
        let load = move || load_chosen(&model, threads);
        let shown = name.clone();
        let on_loaded = move |clf: &khabar::Classifier, took: Duration| {
            eprintln!(
                "model {shown} loaded in {:.2} s: {} labels, {}; serving POST /v1/classify",
                took.as_secs_f64(),
                clf.labels().len(),
                clf.config().architecture.name()
            );
        };
        khabar::serve::serve(listener, name, load, config, stop_signal(), on_loaded).await?;
        eprintln!("stopped");
        Ok(())
    });
    // Work still running past its time limit (its request already answered 503), or a model
    // still loading when the signal came, is not waited for.
    runtime.shutdown_background();
    served
}

/// The model's name in answers: its directory's name, or `built-in`.
fn local_name(model: &Option<std::path::PathBuf>) -> String {
    match model {
        Some(dir) => std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string()),
        None => "built-in".to_string(),
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    eprintln!("shutting down: no new requests; answering those in flight");
}
