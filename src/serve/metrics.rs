//! The server's counters, written for `GET /metrics` in Prometheus' text format (version
//! 0.0.4): requests by route and status, errors by kind, documents classified, the requests
//! waiting and working, and a latency histogram of classification requests.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The server's counters. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Error answers, by kind.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Articles classified.
    documents: AtomicU64,
    /// Requests waiting for a worker.
    pub(crate) waiting: AtomicU64,
    /// Requests being classified.
    pub(crate) working: AtomicU64,
    /// Classification requests' latency: counts per bucket (the last: over every bound).
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Their total latency, in microseconds.
    latency_micros: AtomicU64,
}

impl Metrics {
    /// Counts an answered request; a classification request's latency goes into the histogram.
    pub fn request(&self, route: &'static str, status: u16, latency: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, status))
            .or_default() += 1;
        if route == "/v1/classify" {
            let secs = latency.as_secs_f64();
            let bucket = BUCKETS
                .iter()
                .position(|&b| secs <= b)
                .unwrap_or(BUCKETS.len());
            self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
            self.latency_micros
                .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Counts an error answer of `kind`.
    pub fn error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    /// Counts `n` articles classified.
    pub fn documents(&self, n: usize) {
        self.documents.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Everything, in Prometheus' text format; `model` labels the `khabar_model_info` line.
    pub fn render(&self, model: Option<(&str, &str, &str)>) -> String {
        let mut out = String::new();
        let name = family_line(
            &mut out,
            "khabar_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "{name}{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let name = family_line(
            &mut out,
            "khabar_errors_total",
            "counter",
            "Error answers, by kind.",
        );
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
        }
        for (name, kind, help, value) in [
            (
                "khabar_documents_total",
                "counter",
                "Articles classified.",
                self.documents.load(Ordering::Relaxed),
            ),
            (
                "khabar_requests_waiting",
                "gauge",
                "Classification requests waiting for a worker.",
                self.waiting.load(Ordering::Relaxed),
            ),
            (
                "khabar_requests_working",
                "gauge",
                "Classification requests being classified.",
                self.working.load(Ordering::Relaxed),
            ),
        ] {
            let name = family_line(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = family_line(
            &mut out,
            "khabar_request_duration_seconds",
            "histogram",
            "Latency of classification requests, waiting included.",
        );
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.latency_buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
        if let Some((model, sha256, arch)) = model {
            let name = family_line(
                &mut out,
                "khabar_model_info",
                "gauge",
                "The model being served.",
            );
            let _ = writeln!(
                out,
                "{name}{{name=\"{}\",sha256=\"{sha256}\",architecture=\"{arch}\"}} 1",
                escape(model)
            );
        }
        out
    }
}

/// Writes a metric family's HELP and TYPE lines; gives its name back.
fn family_line(out: &mut String, name: &str, kind: &str, help: &str) -> String {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name.to_string()
}

/// A label value, escaped as the text format asks (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts land in their series, the histogram is cumulative and counts every request, and
    /// label values are escaped.
    #[test]
    fn counts_render_in_the_text_format() {
        let m = Metrics::default();
        m.request("/v1/classify", 200, Duration::from_millis(3));
        m.request("/v1/classify", 200, Duration::from_millis(40));
        m.request("/v1/classify", 422, Duration::from_secs(60));
        m.request("/health", 200, Duration::from_millis(1));
        m.error("malformed_json");
        m.documents(7);
        let text = m.render(Some(("my \"model\"", "abc", "bow")));
        for line in [
            "khabar_requests_total{route=\"/v1/classify\",status=\"200\"} 2",
            "khabar_requests_total{route=\"/v1/classify\",status=\"422\"} 1",
            "khabar_requests_total{route=\"/health\",status=\"200\"} 1",
            "khabar_errors_total{kind=\"malformed_json\"} 1",
            "khabar_documents_total 7",
            "khabar_request_duration_seconds_bucket{le=\"0.001\"} 0",
            "khabar_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "khabar_request_duration_seconds_bucket{le=\"0.05\"} 2",
            "khabar_request_duration_seconds_bucket{le=\"30\"} 2",
            "khabar_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "khabar_request_duration_seconds_count 3",
            "khabar_model_info{name=\"my \\\"model\\\"\",sha256=\"abc\",architecture=\"bow\"} 1",
            "# TYPE khabar_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("khabar_request_duration_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 60.043).abs() < 1e-6, "{sum}");
    }
}
