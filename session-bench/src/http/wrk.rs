//! The comparisons with wrk as the load generator: a separate process, so this process's CPU
//! time is the servers' alone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::App;
use super::client::{connect, login};
use crate::args::Args;
use crate::cpu::{Load, Meter, Snapshot};
use crate::harness::{Comparison, Counts, Measured, Res, Run, Workload};

/// Sessions the requests of a wrk run cycle through.
const COOKIES: usize = 256;

/// wrk runs whole seconds.
pub(super) fn seconds(round: Duration) -> u64 {
    round.as_secs_f64().round().max(1.0) as u64
}

/// A Lua script sending each request with the next cookie of `cookies`.
fn script(cookies: &[String]) -> String {
    let mut lua = String::from("local cookies = {\n");
    for c in cookies {
        let _ = writeln!(lua, "  {c:?},");
    }
    lua.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
         return wrk.format(nil, nil, { [\"Cookie\"] = cookies[(i % #cookies) + 1] })\n\
         end\n",
    );
    lua
}

/// Logs in `COOKIES` sessions on `app`'s server and writes the script for them.
async fn prepare(app: &App, dir: &Path, i: usize) -> Res<PathBuf> {
    let mut cookies = Vec::with_capacity(COOKIES);
    let mut sender = connect(app.addr).await?;
    for _ in 0..COOKIES {
        if let Some(pair) = login(&mut sender).await? {
            cookies.push(pair.to_str()?.to_owned());
        }
    }
    if cookies.is_empty() {
        cookies.push("none=0".to_owned());
    }
    let path = dir.join(format!("app{i}.lua"));
    std::fs::write(&path, script(&cookies))?;
    Ok(path)
}

fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// What one wrk run printed: requests, their time, p50, p99.
#[derive(Debug, PartialEq)]
struct Output {
    requests: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn parse(url: &str, text: &str) -> Res<Output> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    if let Some(n) = field("Non-2xx or 3xx responses:") {
        return Err(format!("{url}: {n} requests failed").into());
    }
    if let Some(errors) = field("Socket errors:") {
        return Err(format!("{url}: socket errors: {errors}").into());
    }
    // "12345 requests in 1.00s, 1.23MB read"
    let (requests, elapsed) = text
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(" requests in ")?;
            Some((n.parse().ok()?, duration(rest.split(',').next()?)?))
        })
        .ok_or_else(|| format!("no \"requests in\" line in wrk's output: {text}"))?;
    Ok(Output {
        requests,
        elapsed,
        p50: field("50%").and_then(duration).unwrap_or_default(),
        p99: field("99%").and_then(duration).unwrap_or_default(),
    })
}

/// One wrk run against `app`, with this process's and the server's CPU time around it.
async fn run(app: &App, url: &str, script: &Path, tasks: usize, secs: u64) -> Res<(Run, Output)> {
    let meter = Meter::start(app.server.as_ref()).await?;
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{tasks}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (install it, or use --load-generator hyper): {e}"))?;
    let (cpu, server_cpu) = meter.stop().await?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("wrk failed: {text}{stderr}").into());
    }
    let out = parse(url, &text)?;
    let run = Run {
        cycles: out.requests,
        elapsed: out.elapsed,
        cpu,
        server_cpu,
        latencies: Vec::new(),
        counts: Counts::default(),
    };
    Ok((run, out))
}

pub(super) async fn measure(args: &Args, apps: &[App]) -> Res<Vec<Comparison>> {
    let dir = std::env::temp_dir().join(format!("session-bench-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut scripts = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        scripts.push(prepare(app, &dir, i).await?);
    }
    let timing = args.timing();
    let secs = seconds(timing.round);
    let mut comparisons = Vec::new();
    for workload in [Workload::HttpRead, Workload::HttpWrite] {
        let path = if workload == Workload::HttpRead {
            "read"
        } else {
            "write"
        };
        let urls: Vec<String> = apps
            .iter()
            .map(|a| format!("http://{}/{path}", a.addr))
            .collect();
        for tasks in args.tasks() {
            eprintln!("[http/wrk] {} at {tasks} connections", workload.name());
            for (i, app) in apps.iter().enumerate() {
                run(app, &urls[i], &scripts[i], tasks, 1).await?;
            }
            let mut results: Vec<Measured> = apps
                .iter()
                .map(|a| Measured::new(&a.label, a.role))
                .collect();
            let start = Snapshot::take();
            for round in 0..timing.rounds {
                for k in 0..apps.len() {
                    let i = (round + k) % apps.len();
                    let (run, out) = run(&apps[i], &urls[i], &scripts[i], tasks, secs).await?;
                    results[i].push(run);
                    results[i].reported.push((out.p50, out.p99));
                }
            }
            comparisons.push(Comparison {
                workload,
                tasks,
                results,
                load: Load::between(&start, &Snapshot::take()),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(comparisons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_durations_parse_with_their_units() {
        assert_eq!(duration("123.00us"), Some(Duration::from_micros(123)));
        assert_eq!(duration("1.50ms"), Some(Duration::from_micros(1500)));
        assert_eq!(duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(duration("7"), None);
    }

    #[test]
    fn wrk_output_gives_requests_time_and_latencies() {
        let text = "Running 1s test @ http://127.0.0.1:1/read\n  1 threads and 16 connections\n\
                    \x20 Latency Distribution\n     50%  101.00us\n     75%  150.00us\n\
                    \x20    90%  200.00us\n     99%    1.20ms\n\
                    \x20 12345 requests in 1.00s, 1.23MB read\nRequests/sec:  12345.00\n";
        assert_eq!(
            parse("u", text).expect("parses"),
            Output {
                requests: 12345,
                elapsed: Duration::from_secs(1),
                p50: Duration::from_micros(101),
                p99: Duration::from_micros(1200),
            }
        );
        let failed = format!("{text}  Non-2xx or 3xx responses: 3\n");
        assert!(parse("u", &failed).is_err());
        assert!(parse("u", "nothing").is_err());
    }

    #[test]
    fn the_script_cycles_through_every_cookie() {
        let lua = script(&["sid=a".to_owned(), "sid=b".to_owned()]);
        assert!(
            lua.contains("\"sid=a\",") && lua.contains("\"sid=b\","),
            "{lua}"
        );
        assert!(lua.contains("cookies[(i % #cookies) + 1]"), "{lua}");
    }
}
