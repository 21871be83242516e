//! Which image a fixture runs: `images.txt`, the project's one list of images, read at build
//! time, and the environment variable of each service read when the fixture runs.

/// The list itself, shared with `scripts/lib/docker.sh` and `scripts/test-images/build.sh`.
const IMAGES: &str = include_str!("../images.txt");

/// Where the stand-in images are tagged by default (`scripts/test-images/build.sh`, `TC_PREFIX`).
const STAND_IN_PREFIX: &str = "tc-local";

/// One line of `images.txt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// The service's name, also the folder of its stand-in under `scripts/test-images/`.
    pub(crate) service: &'static str,
    /// The environment variable that overrides the image.
    pub(crate) variable: &'static str,
    /// The default: the official image.
    pub(crate) official: &'static str,
    /// The tag of the stand-in image.
    pub(crate) stand_in_tag: &'static str,
}

impl Row {
    /// The stand-in's name with the default prefix, e.g. `tc-local/redis:7`.
    pub(crate) fn stand_in(&self) -> String {
        format!("{STAND_IN_PREFIX}/{}:{}", self.service, self.stand_in_tag)
    }

    /// The image to run: the variable if set and not blank, else the official image.
    pub(crate) fn image(&self) -> String {
        match std::env::var(self.variable) {
            Ok(image) if !image.trim().is_empty() => image.trim().to_owned(),
            _ => self.official.to_owned(),
        }
    }
}

/// Every row of `images.txt`, in order; comments and blank lines skipped. A line that does not
/// have exactly four columns comes back as `Err(line)` (the unit tests refuse it).
fn rows() -> impl Iterator<Item = Result<Row, &'static str>> {
    IMAGES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut columns = line.split_whitespace();
            match (
                columns.next(),
                columns.next(),
                columns.next(),
                columns.next(),
                columns.next(),
            ) {
                (Some(service), Some(variable), Some(official), Some(stand_in_tag), None) => {
                    Ok(Row {
                        service,
                        variable,
                        official,
                        stand_in_tag,
                    })
                }
                _ => Err(line),
            }
        })
}

/// The row of `service`.
///
/// # Panics
///
/// When `images.txt` has no well-formed row for it: a defect of this crate, which its unit
/// tests catch before a release.
pub(crate) fn row(service: &str) -> Row {
    match rows().flatten().find(|row| row.service == service) {
        Some(row) => row,
        None => panic!("session-testcontainers' images.txt has no row for `{service}`"),
    }
}

/// `name[:tag]` into name and tag (`latest` when absent); a `:` before the last `/` belongs
/// to a registry's port. A digest (`name@sha256:...`) comes back together by `name:tag`.
pub(crate) fn split_image(image: &str) -> (&str, &str) {
    let last_part = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[last_part..].rfind(':') {
        Some(colon) => (&image[..last_part + colon], &image[last_part + colon + 1..]),
        None => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::SERVICES;

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(split_image("redis:7"), ("redis", "7"));
        assert_eq!(
            split_image("tc-local/mariadb:10.11"),
            ("tc-local/mariadb", "10.11")
        );
        assert_eq!(split_image("mongo"), ("mongo", "latest"));
        assert_eq!(
            split_image("localhost:5000/pg"),
            ("localhost:5000/pg", "latest")
        );
        assert_eq!(
            split_image("localhost:5000/pg:16"),
            ("localhost:5000/pg", "16")
        );
    }

    #[test]
    fn every_line_of_the_image_list_has_four_columns() {
        let bad: Vec<_> = rows().filter_map(Result::err).collect();
        assert!(bad.is_empty(), "malformed lines in images.txt: {bad:?}");
        assert!(rows().count() > 0, "images.txt lists no image");
    }

    #[test]
    fn the_image_list_and_the_fixtures_agree() {
        let listed: Vec<Row> = rows().flatten().collect();
        for service in SERVICES {
            let matching = listed.iter().filter(|r| r.service == service.key).count();
            assert_eq!(
                matching, 1,
                "images.txt must have exactly one row for the fixture service `{}`",
                service.key
            );
        }
        for row in &listed {
            assert!(
                SERVICES.iter().any(|s| s.key == row.service),
                "images.txt lists `{}`, which no fixture starts",
                row.service
            );
            assert_eq!(
                row.variable,
                format!("TC_IMAGE_{}", row.service.to_uppercase()),
                "the variable of `{}`",
                row.service
            );
            let (name, tag) = split_image(row.official);
            assert_eq!(
                name, row.service,
                "the official image of `{}` must be the image of that name (the stand-in's \
                 folder and tag are named after it)",
                row.service
            );
            assert_eq!(
                tag, row.stand_in_tag,
                "the stand-in of `{}` must promise the official image's version",
                row.service
            );
        }
    }

    #[test]
    fn the_readme_states_the_listed_images() {
        let readme = include_str!("../README.md");
        for row in rows().flatten() {
            let stated = readme.lines().any(|line| {
                line.starts_with('|')
                    && line.contains(&format!("`{}`", row.variable))
                    && line.contains(&format!("`{}`", row.official))
                    && line.contains(&format!("`{}`", row.stand_in()))
            });
            assert!(
                stated,
                "README.md must have a table row naming `{}`, `{}` and `{}`",
                row.variable,
                row.official,
                row.stand_in()
            );
        }
    }

    #[test]
    fn an_unset_variable_means_the_official_image() {
        // A variable nothing sets: changing the process environment is unsafe while the other
        // tests run in parallel threads.
        let row = Row {
            service: "example",
            variable: "SESSION_TESTCONTAINERS_UNSET_VARIABLE",
            official: "example:1",
            stand_in_tag: "1",
        };
        assert_eq!(row.image(), "example:1");
        assert_eq!(row.stand_in(), "tc-local/example:1");
    }
}
