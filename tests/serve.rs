//! `khabar serve` through real HTTP on loopback: the answers, the errors and limits, the
//! metrics, overload and time limits, and shutdown on SIGTERM.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `khabar serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `khabar serve` on a free port with `args`, and waits until `/health` is 200.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("khabar"))
            .arg("serve")
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("khabar serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .unwrap();
        // The rest of stderr is drained so that the server never blocks on it.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
        });
        let server = Server { child, addr };
        let start = Instant::now();
        loop {
            let (status, _, _) = server.get("/health");
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "health while loading");
            assert!(start.elapsed() < Duration::from_secs(60), "never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        http(self.addr, "GET", path, None).expect("the server answers")
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, String, String) {
        http(self.addr, "POST", path, Some(body)).expect("the server answers")
    }

    /// POSTs `body` to /v1/classify and parses the answer.
    fn classify(&self, body: Value) -> (u16, Value) {
        let (status, _, text) = self.post("/v1/classify", body.to_string().as_bytes());
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    /// The value of a metric's sample line (`name{labels}`), 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let (_, _, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
            .unwrap_or(0.0)
    }

    fn wait_for_metric(&self, series: &str, value: f64) {
        let start = Instant::now();
        while self.metric(series) != value {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{series} never reached {value}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a new connection: (status, headers, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    // A server that refuses a large body may answer before reading it all.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    if raw.is_empty() {
        // Closed unanswered: a server shutting down may have taken the connection just before
        // it stopped taking them (under load, the window is wide enough to hit).
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without an answer",
        ));
    }
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("headers end");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, head.to_string(), body))
}

/// A chunked body's content.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Trains a small bow model on the repository's corpus into `dir`.
fn train_small(dir: &Path) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("khabar"))
        .args([
            "train",
            "--data",
            "data/news/train.jsonl",
            "--calibration-folds",
            "0",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Articles long enough that the encoder takes seconds over them (the slow requests of the
/// overload, time-limit and shutdown tests).
fn slow_texts(n: usize) -> Vec<String> {
    let sentence = "The finance minister presented the annual budget in parliament while the \
                    opposition staged a walkout over rising prices and unemployment. ";
    (0..n)
        .map(|i| format!("Report {i}. {}", sentence.repeat(12)))
        .collect()
}

/// The answers of a served model are those of `khabar predict` on the same model, in the
/// request's order, with the ids and the model's name and checksum; top_k, threshold and
/// explain work; info, health, openapi and metrics say what they should.
#[test]
fn answers_match_predict_and_name_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("news-small");
    train_small(&model);
    let server = Server::start(&["--model", model.to_str().unwrap()]);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    let texts = [
        "The striker scored twice as United beat City in the cup final",
        "भारत और चीन के विदेश मंत्रियों ने सीमा विवाद पर बातचीत की",
        "Shares fell sharply as the central bank raised interest rates",
        "",
    ];
    let out = Command::new(assert_cmd::cargo::cargo_bin("khabar"))
        .args(["predict", "--output", "jsonl", "--top-k", "2", "--model"])
        .arg(&model)
        .args(texts)
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let (status, v) = server.classify(json!({"texts": texts, "top_k": 2}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"]["name"], "news-small");
    assert_eq!(
        v["model"]["sha256"],
        config["checksums"]["model.safetensors"]
    );
    assert_eq!(v["model"]["architecture"], "bow");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), texts.len());
    for (got, want) in results.iter().zip(&expected) {
        assert_eq!(got["label"], want["label"]);
        assert_eq!(got["top"].as_array().unwrap().len(), 2);
        for (g, w) in got["top"]
            .as_array()
            .unwrap()
            .iter()
            .zip(want["top"].as_array().unwrap())
        {
            assert_eq!(g["label"], w["label"]);
            let (g, w) = (g["score"].as_f64().unwrap(), w["score"].as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{g} {w}");
        }
        assert!(got.get("id").is_none());
    }

    // Documents keep their ids (any JSON value) and their order.
    let docs: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let id = if i % 2 == 0 {
                json!(i)
            } else {
                json!(format!("doc-{i}"))
            };
            json!({"id": id, "text": t})
        })
        .collect();
    let (status, v) = server.classify(json!({"documents": docs, "explain": 3}));
    assert_eq!(status, 200);
    for (i, (got, want)) in v["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&expected)
        .enumerate()
    {
        assert_eq!(got["id"], docs[i]["id"]);
        assert_eq!(got["label"], want["label"]);
        assert_eq!(
            got["top"].as_array().unwrap().len(),
            3,
            "top_k defaults to 3"
        );
        let why = &got["explain"];
        assert_eq!(why["label"], want["label"]);
        assert!(why["raised"].as_array().unwrap().len() <= 3);
    }

    // Below the threshold, the answer is the unsure label with the best label's score.
    let (status, v) = server.classify(json!({
        "texts": texts, "threshold": 0.999999, "unsure_label": "other"
    }));
    assert_eq!(status, 200);
    for (got, want) in v["results"].as_array().unwrap().iter().zip(&expected) {
        assert_eq!(got["label"], "other");
        assert_eq!(got["top"][0]["label"], want["label"]);
    }
    let (status, v) = server.classify(json!({"texts": []}));
    assert_eq!((status, v["results"].as_array().unwrap().len()), (200, 0));

    let (status, _, body) = server.get("/v1/info");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["labels"], config["labels"]);
    assert_eq!(
        info["model"]["sha256"],
        config["checksums"]["model.safetensors"]
    );
    assert_eq!(info["limits"]["max_batch"], 1000);

    let (status, _, body) = server.get("/openapi.json");
    assert_eq!(status, 200);
    let api: Value = serde_json::from_str(&body).unwrap();
    for path in [
        "/v1/classify",
        "/v1/info",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            api["paths"][path].is_object(),
            "{path} missing from the OpenAPI"
        );
    }
    // The request: its fields, texts or documents (one of them), at most max_batch of them.
    let request = &api["components"]["schemas"]["ClassifyRequest"]["allOf"];
    for field in ["texts", "documents", "top_k", "threshold", "explain"] {
        assert!(
            request[0]["properties"][field].is_object(),
            "{field} missing from the request schema"
        );
    }
    assert_eq!(request[0]["properties"]["texts"]["maxItems"], 1000);
    assert_eq!(request[1]["oneOf"][0]["required"], json!(["texts"]));
    assert_eq!(request[1]["oneOf"][1]["required"], json!(["documents"]));

    assert_eq!(
        server.metric("khabar_requests_total{route=\"/v1/classify\",status=\"200\"}"),
        4.0
    );
    assert_eq!(server.metric("khabar_documents_total"), 12.0);
    assert_eq!(server.metric("khabar_request_duration_seconds_count"), 4.0);
    let (_, head, text) = server.get("/metrics");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/plain; version=0.0.4"));
    assert!(text.contains("khabar_model_info{name=\"news-small\""));
}

/// Each limit and malformed request gets its status and a JSON error of its kind, counted in
/// the metrics.
#[test]
fn bad_requests_get_json_errors_of_their_kind() {
    let server = Server::start(&["--max-body-bytes", "2000", "--max-batch", "3", "--fast"]);
    let expect = |(status, _, body): (u16, String, String), want_status: u16, kind: &str| {
        assert_eq!(status, want_status, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["kind"], kind, "{body}");
        assert!(!v["error"].as_str().unwrap().is_empty());
        v["error"].as_str().unwrap().to_string()
    };
    let big = json!({"texts": ["x".repeat(3000)]}).to_string();
    let msg = expect(
        server.post("/v1/classify", big.as_bytes()),
        413,
        "body_too_large",
    );
    assert!(msg.contains("2000 bytes"), "{msg}");
    let four = json!({"texts": ["a", "b", "c", "d"]}).to_string();
    let msg = expect(
        server.post("/v1/classify", four.as_bytes()),
        413,
        "batch_too_large",
    );
    assert!(msg.contains("limit is 3"), "{msg}");
    expect(
        server.post("/v1/classify", b"{\"texts\": [\"a\""),
        422,
        "malformed_json",
    );
    expect(
        server.post("/v1/classify", b"{} trailing"),
        422,
        "malformed_json",
    );
    let msg = expect(
        server.post(
            "/v1/classify",
            br#"{"documents": [{"id": 1, "text": "a"}, {"id": 2, "text": 5}]}"#,
        ),
        422,
        "invalid_request",
    );
    assert!(msg.starts_with("documents[1].text: invalid type"), "{msg}");
    let msg = expect(
        server.post("/v1/classify", br#"{"text": ["a"]}"#),
        422,
        "invalid_request",
    );
    assert!(msg.contains("unknown field `text`"), "{msg}");
    expect(server.post("/v1/classify", b"{}"), 422, "invalid_request");
    expect(
        server.post("/v1/classify", br#"{"texts": ["a"], "documents": []}"#),
        422,
        "invalid_request",
    );
    expect(
        server.post("/v1/classify", br#"{"texts": ["a"], "top_k": 0}"#),
        422,
        "invalid_request",
    );
    let msg = expect(
        server.post("/v1/classify", br#"{"texts": ["a"], "threshold": 1.5}"#),
        422,
        "invalid_request",
    );
    assert!(msg.contains("between 0 and 1"), "{msg}");
    expect(server.get("/v1/classify"), 405, "method_not_allowed");
    expect(server.get("/v2/classify"), 404, "not_found");
    assert_eq!(
        server.metric("khabar_errors_total{kind=\"malformed_json\"}"),
        2.0
    );
    assert_eq!(
        server.metric("khabar_errors_total{kind=\"invalid_request\"}"),
        6.0
    );
    assert_eq!(
        server.metric("khabar_errors_total{kind=\"body_too_large\"}"),
        1.0
    );
    // The built-in model's own threshold: `"model"`.
    let (status, v) = server.classify(json!({"texts": ["asdf qwer zxcv"], "threshold": "model"}));
    assert_eq!(status, 200, "{v}");
    let msg = expect(
        server.post("/v1/classify", br#"{"texts": ["a"], "threshold": "high"}"#),
        422,
        "invalid_request",
    );
    assert!(msg.contains("or \"model\""), "{msg}");
}

/// With one worker and no queue, a request that arrives while another is classified is
/// refused (503 overloaded, Retry-After); a request over the time limit is answered 503
/// timeout, and its work still holds the worker until done.
#[test]
fn overload_and_time_limit() {
    let server = Server::start(&[
        "--workers",
        "1",
        "--queue",
        "0",
        "--timeout",
        "0.5",
        "--accurate",
        "--threads",
        "1",
    ]);
    let addr = server.addr;
    let slow = json!({"texts": slow_texts(24)}).to_string();
    let first =
        std::thread::spawn(move || http(addr, "POST", "/v1/classify", Some(slow.as_bytes())));
    server.wait_for_metric("khabar_requests_working", 1.0);
    let (status, head, body) = server.post("/v1/classify", br#"{"texts": ["a"]}"#);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"kind\":\"overloaded\""), "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let (status, _, body) = first.join().unwrap().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"kind\":\"timeout\""), "{body}");
    // Once the timed-out work is done, the worker is free again.
    server.wait_for_metric("khabar_requests_working", 0.0);
    let (status, v) = server.classify(json!({"texts": ["a goal in the final"]}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        server.metric("khabar_errors_total{kind=\"overloaded\"}"),
        1.0
    );
    assert_eq!(server.metric("khabar_errors_total{kind=\"timeout\"}"), 1.0);

    // A client that sends its body slowly (here: a part of it, then nothing) gets the timeout
    // too, rather than holding its connection for ever.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /v1/classify HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: \
         100\r\n\r\n{{\"texts\": ["
    )
    .unwrap();
    let start = Instant::now();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"kind\":\"timeout\""), "{answer}");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(server.metric("khabar_errors_total{kind=\"timeout\"}"), 2.0);

    // A client that sends part of a request's head and then nothing, or nothing at all, has
    // its connection closed once the time limit has passed (it used to be held for ever).
    for sent in ["GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", ""] {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(sent.as_bytes()).unwrap();
        let start = Instant::now();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(
            read.is_ok(),
            "{sent:?}: the connection stayed open: {read:?}"
        );
        assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
        assert!(start.elapsed() < Duration::from_secs(20), "{sent:?}");
    }
    // The server still answers.
    assert_eq!(server.get("/health").0, 200);
}

/// SIGTERM: the request in flight is answered in full, no new connection is taken, and the
/// server exits with status 0.
#[cfg(unix)]
#[test]
fn sigterm_finishes_requests_in_flight() {
    let mut server = Server::start(&["--accurate", "--threads", "1"]);
    let addr = server.addr;
    let n = 16;
    let slow = json!({"texts": slow_texts(n)}).to_string();
    let first =
        std::thread::spawn(move || http(addr, "POST", "/v1/classify", Some(slow.as_bytes())));
    server.wait_for_metric("khabar_requests_working", 1.0);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The listener closes: new connections are refused (or closed unanswered).
    let start = Instant::now();
    loop {
        match http(addr, "GET", "/health", None) {
            Err(_) => break,
            Ok(_) if start.elapsed() > Duration::from_secs(10) => {
                panic!("still answering new connections after SIGTERM")
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let (status, _, body) = first.join().unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), n);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// A model that cannot be loaded stops the server with the loader's error and exit code 2.
#[test]
fn a_model_that_cannot_load_stops_the_server() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("khabar"))
        .args(["serve", "--addr", "127.0.0.1:0", "--model", "no/such/model"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no/such/model"), "{stderr}");
    let out = Command::new(assert_cmd::cargo::cargo_bin("khabar"))
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers must be at least 1"));
}

/// A multi-label model answers every label over its threshold, as the library does, and a
/// threshold of the request's own is refused (422 unsupported).
#[test]
fn a_multi_label_model_answers_its_labels() {
    use khabar::{Classifier, Corpus, Example, ReadOptions, TrainConfig, Trainer};
    let c = Corpus::read("data/news/train.jsonl", &ReadOptions::default()).unwrap();
    let mut examples = c.examples.clone();
    for (a, b) in c.examples.iter().zip(c.examples.iter().skip(7)) {
        if a.label != b.label {
            examples.push(Example::with_labels(
                format!("{} {}", a.text, b.text),
                vec![a.label.clone(), b.label.clone()],
            ));
        }
    }
    let clf = Trainer::new(TrainConfig {
        multi_label: true,
        ..TrainConfig::default()
    })
    .train(&Corpus::from_examples(examples))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("multi");
    clf.save(&dir).unwrap();
    let clf = Classifier::load(&dir).unwrap();
    let test = Corpus::read("data/news/test.jsonl", &ReadOptions::default()).unwrap();
    let texts: Vec<String> = test
        .examples
        .iter()
        .zip(test.examples.iter().skip(3))
        .take(12)
        .map(|(a, b)| format!("{} {}", a.text, b.text))
        .collect();
    let expected = clf.predict_batch(&texts).unwrap();

    let server = Server::start(&["--model", dir.to_str().unwrap()]);
    let (status, v) = server.classify(json!({"texts": texts}));
    assert_eq!(status, 200, "{v}");
    let mut answered_two = 0;
    for (got, want) in v["results"].as_array().unwrap().iter().zip(&expected) {
        let want_labels: Vec<&str> = want
            .labels
            .as_ref()
            .unwrap()
            .iter()
            .map(|l| l.label.as_str())
            .collect();
        let got_labels: Vec<&str> = got["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["label"].as_str().unwrap())
            .collect();
        assert_eq!(got_labels, want_labels);
        assert_eq!(got["below_threshold"], want_labels.is_empty());
        assert_eq!(got["label"], want.label.as_str());
        answered_two += usize::from(got_labels.len() >= 2);
    }
    assert!(answered_two > 0, "no article got two labels: {v}");
    let (status, v) = server.classify(json!({"texts": ["a"], "threshold": 0.5}));
    assert_eq!(status, 422);
    assert_eq!(v["kind"], "unsupported");
}
