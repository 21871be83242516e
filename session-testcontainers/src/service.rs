//! What differs between the servers: port, environment, readiness lines, URL. Images come from
//! `images.txt` (see [`crate::images`]).

use crate::images::{self, Row};

/// Which of the container's output streams a readiness line appears on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// A log line the server prints when it accepts connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    pub(crate) stream: Stream,
    pub(crate) text: &'static str,
}

/// One kind of server.
#[derive(Debug)]
pub(crate) struct Service {
    /// Its row in `images.txt`.
    pub(crate) key: &'static str,
    /// For messages.
    pub(crate) name: &'static str,
    /// The server's port inside the container.
    pub(crate) port: u16,
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// Waited for in order after the first start. The last one appears exactly once per start
    /// (also with the official images, whose first start runs a temporary server), so after a
    /// restart number n its n+1st occurrence means ready.
    pub(crate) ready: &'static [Ready],
    pub(crate) url: fn(u16) -> String,
}

impl Service {
    /// Its line of `images.txt`.
    pub(crate) fn images(&self) -> Row {
        images::row(self.key)
    }
}

pub(crate) const REDIS: Service = Service {
    key: "redis",
    name: "Redis",
    port: 6379,
    env: &[],
    ready: &[Ready {
        stream: Stream::Stdout,
        text: "Ready to accept connections",
    }],
    url: |port| format!("redis://127.0.0.1:{port}"),
};

pub(crate) const POSTGRES: Service = Service {
    key: "postgres",
    name: "PostgreSQL",
    port: 5432,
    env: &[("POSTGRES_PASSWORD", "postgres")],
    // On stderr only: the official image's temporary set-up server logs its copy to stdout.
    ready: &[Ready {
        stream: Stream::Stderr,
        text: "database system is ready to accept connections",
    }],
    url: |port| format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
};

pub(crate) const MARIADB: Service = Service {
    key: "mariadb",
    name: "MariaDB",
    port: 3306,
    env: &[
        ("MARIADB_ROOT_PASSWORD", "root"),
        ("MARIADB_DATABASE", "test"),
    ],
    // The official image's temporary set-up server is also "ready for connections", but on
    // port 0: only the line naming port 3306 belongs to the real server.
    ready: &[
        Ready {
            stream: Stream::Stderr,
            text: "ready for connections",
        },
        Ready {
            stream: Stream::Stderr,
            text: "port: 3306",
        },
    ],
    url: |port| format!("mysql://root:root@127.0.0.1:{port}/test"),
};

pub(crate) const MONGO: Service = Service {
    key: "mongo",
    name: "MongoDB",
    port: 27017,
    env: &[],
    ready: &[Ready {
        stream: Stream::Stdout,
        text: "Waiting for connections",
    }],
    url: |port| format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
};

/// Every service a fixture starts (Redis Cluster runs the Redis image).
#[cfg(test)]
pub(crate) const SERVICES: [&Service; 4] = [&REDIS, &POSTGRES, &MARIADB, &MONGO];
