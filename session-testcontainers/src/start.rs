//! Starting a container: the request common to every fixture (labels, loopback-only ports,
//! readiness), retries when a chosen host port was taken meanwhile, cleanup of failed
//! attempts, and the message that says what to check when it cannot start.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::WaitFor;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::logs::consumer::LogConsumer;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

use crate::images::split_image;
use crate::ports;
use crate::service::{Service, Stream};

/// How long a container may take from start to ready. Generous: CI machines have two cores and
/// run many tests at once.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a start is retried when the chosen host port was taken in the meantime.
const PORT_ATTEMPTS: usize = 5;

/// The environment variable whose value labels every container started while it is set.
pub(crate) const RUN_VARIABLE: &str = "SESSION_RS_TEST_RUN";
/// The label carrying [`RUN_VARIABLE`]'s value, for cleaning up after killed test processes.
pub(crate) const RUN_LABEL: &str = "session-rs.test-run";
/// Label unique to one start attempt, to find (and remove) a container whose start failed.
const ATTEMPT_LABEL: &str = "session-rs.fixture";

/// What a container waits for before it counts as started.
pub(crate) enum Readiness {
    /// The service's own readiness lines.
    Service,
    /// One line on stdout (the Redis Cluster script's).
    Stdout(&'static str),
}

/// Starts a container of `image` whose request `configure` completes with `count` free host
/// ports, retrying with other ports when one was taken in the meantime. Panics with advice when
/// it cannot start, after removing what the failed attempt left behind.
pub(crate) async fn run_with_free_ports(
    service: &'static Service,
    what: &str,
    image: &str,
    count: usize,
    readiness: Readiness,
    configure: impl Fn(ContainerRequest<GenericImage>, &[u16]) -> ContainerRequest<GenericImage>,
) -> (ContainerAsync<GenericImage>, Vec<u16>) {
    let (name, tag) = split_image(image);
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let ports = match ports::free(count) {
            Ok(ports) => ports,
            Err(e) => panic!("could not find {count} free TCP port(s) on 127.0.0.1: {e}"),
        };
        let attempt = format!("{}-{:016x}", std::process::id(), ports::random());
        let mut base = GenericImage::new(name, tag);
        match readiness {
            Readiness::Stdout(text) => base = base.with_wait_for(WaitFor::message_on_stdout(text)),
            Readiness::Service => {
                for ready in service.ready {
                    base = base.with_wait_for(match ready.stream {
                        Stream::Stdout => WaitFor::message_on_stdout(ready.text),
                        Stream::Stderr => WaitFor::message_on_stderr(ready.text),
                    });
                }
            }
        }
        let tail = LogTail::default();
        let mut request = base
            .with_label(ATTEMPT_LABEL, attempt.clone())
            .with_log_consumer(tail.clone())
            .with_startup_timeout(READY_TIMEOUT)
            // Loopback only, whatever the daemon's default (`dockerd --ip`) is.
            .with_host_config_modifier(|host| {
                for bindings in host.port_bindings.iter_mut().flat_map(|m| m.values_mut()) {
                    for binding in bindings.iter_mut().flatten() {
                        binding.host_ip = Some(Ipv4Addr::LOCALHOST.to_string());
                    }
                }
            });
        if let Ok(run) = std::env::var(RUN_VARIABLE) {
            request = request.with_label(RUN_LABEL, run);
        }
        let request = configure(request, &ports);
        let error = match request.start().await {
            Ok(container) => return (container, ports),
            Err(e) => e,
        };
        remove_attempt(&attempt).await;
        let text = format!("{error:?}");
        ports::release(&ports);
        if text.contains("port is already allocated") || text.contains("address already in use") {
            last_error = text;
            continue;
        }
        panic!(
            "{}",
            start_advice(service, what, image, &error, &tail.render())
        );
    }
    panic!(
        "could not start the {what} test container from image `{image}`: the chosen host ports \
         were taken {PORT_ATTEMPTS} times in a row; last error: {last_error}"
    );
}

/// The panic message of a start that failed for another reason than a taken port.
pub(crate) fn start_advice(
    service: &Service,
    what: &str,
    image: &str,
    error: &dyn fmt::Debug,
    log_tail: &str,
) -> String {
    let row = service.images();
    format!(
        "could not start the {what} test container from image `{image}`: {error:?}\n\
         What to check:\n\
         - Is Docker running? `docker info` must answer (`bash scripts/test.sh` in the \
           session-rs repository installs and starts it when run as root).\n\
         - Is the image there? `docker image inspect {image}`, or `docker pull {image}`. The \
           image comes from the environment variable {var} (default `{official}`); without a \
           container registry, build the stand-ins with `bash scripts/test-images/build.sh` and \
           set {var}={stand_in} (scripts/test.sh does both).\n\
         - Another image must print the official image's readiness lines (see the \
           session_testcontainers documentation).{log_tail}",
        var = row.variable,
        official = row.official,
        stand_in = row.stand_in(),
    )
}

/// Removes what a failed start attempt left behind: testcontainers removes a container that
/// started but never became ready, not one that was created and then failed to start (a host
/// port taken in the meantime, say).
async fn remove_attempt(attempt: &str) {
    let Ok(docker) = Docker::connect_with_local_defaults() else {
        return;
    };
    let filters = HashMap::from([("label", vec![format!("{ATTEMPT_LABEL}={attempt}")])]);
    let list = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(found) = docker.list_containers(Some(list)).await else {
        return;
    };
    for id in found.into_iter().filter_map(|c| c.id) {
        let remove = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        // Best effort: the panic that follows is the report.
        let _ = docker.remove_container(&id, Some(remove)).await;
    }
}

/// The last lines a container logged, kept for the message when it fails to become ready (by
/// then testcontainers has removed it, and its log with it).
#[derive(Clone, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    const LINES: usize = 30;

    fn render(&self) -> String {
        let lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.is_empty() {
            return String::from("\nThe container logged nothing.");
        }
        let mut text = String::from("\nLast lines the container logged:");
        for line in lines.iter() {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

impl LogConsumer for LogTail {
    fn accept<'a>(&'a self, record: &'a LogFrame) -> BoxFuture<'a, ()> {
        let (stream, bytes) = match record {
            LogFrame::StdOut(bytes) => ("stdout", bytes),
            LogFrame::StdErr(bytes) => ("stderr", bytes),
        };
        let mut lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(format!("[{stream}] {line}"));
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::MARIADB;

    #[test]
    fn start_failures_say_what_to_check() {
        let message = start_advice(
            &MARIADB,
            "MariaDB",
            "example/maria:1",
            &"boom",
            "\nlog tail",
        );
        let row = MARIADB.images();
        for expected in [
            "MariaDB",
            "`example/maria:1`",
            "boom",
            "docker info",
            "TC_IMAGE_MARIADB",
            &format!("`{}`", row.official),
            "scripts/test-images/build.sh",
            &format!("TC_IMAGE_MARIADB={}", row.stand_in()),
            "log tail",
        ] {
            assert!(
                message.contains(expected),
                "{expected:?} missing from: {message}"
            );
        }
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines_of_both_streams() {
        let tail = LogTail::default();
        assert_eq!(tail.render(), "\nThe container logged nothing.");
        for i in 0..LogTail::LINES {
            let frame = LogFrame::StdOut(format!("line {i}\n\n").into_bytes().into());
            futures_util::FutureExt::now_or_never(tail.accept(&frame)).expect("ready at once");
        }
        let frame = LogFrame::StdErr(b"the last words\n".to_vec().into());
        futures_util::FutureExt::now_or_never(tail.accept(&frame)).expect("ready at once");
        let text = tail.render();
        assert!(
            !text.contains("line 0\n"),
            "the oldest line is dropped: {text}"
        );
        assert!(text.contains("[stdout] line 1\n"), "{text}");
        assert!(text.ends_with("[stderr] the last words"), "{text}");
        let kept = text.lines().filter(|l| l.starts_with("  [")).count();
        assert_eq!(kept, LogTail::LINES, "{text}");
    }
}
