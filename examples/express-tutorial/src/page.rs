//! The page at `/`: what the tutorial teaches, live for the visitor's own session.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use session_tower::{CookieSettings, SameSite, Session};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::app::{Tutorial, USER_AGENT, USERNAME};
use crate::store::StoreInfo;

#[derive(Template)]
#[template(path = "index.html")]
struct Page<'a> {
    username: Option<String>,
    /// The session's values as pretty JSON.
    values: String,
    store: &'a StoreInfo,
    /// `None` while nothing is stored.
    expiry: Option<Expiry>,
    /// The cookie as this request sends it.
    cookie: CookieSettings,
    /// This session's cookie `Max-Age`: `None` for a browser-session cookie.
    max_age: Option<Duration>,
    /// The logged-in user's sessions; `None` when nobody is logged in.
    devices: Option<Devices>,
}

/// The user's sessions, as the page lists them.
struct Devices {
    /// Whether the store keeps the sessions of a user; without it the list is empty.
    available: bool,
    list: Vec<Device>,
}

/// One session of the user.
struct Device {
    /// Names it for `POST /sessions/revoke` (a hash of its id, never the id).
    handle: String,
    /// The browser's `User-Agent` at login.
    user_agent: String,
    created: String,
    /// When it ends if unused (as of its last use).
    expires: String,
    /// The session of this request.
    current: bool,
}

/// When the stored session ends.
struct Expiry {
    /// The earlier of the idle and the absolute end, as of the session's last use.
    idle: String,
    /// This session's idle timeout, spoken; `None` without one.
    idle_timeout: Option<String>,
    /// Its start plus the absolute timeout; `None` without one.
    absolute: Option<String>,
}

impl Page<'_> {
    fn same_site(&self) -> &'static str {
        match self.cookie.same_site {
            Some(SameSite::Strict) => "Strict",
            Some(SameSite::Lax) => "Lax",
            Some(SameSite::None) => "None",
            // Browsers then assume Lax.
            None => "(not sent)",
        }
    }

    fn same_site_meaning(&self) -> &'static str {
        match self.cookie.same_site {
            Some(SameSite::Strict) => "sent only with requests this site starts",
            Some(SameSite::Lax) | None => {
                "not sent with requests other sites start, except links followed to this one"
            }
            Some(SameSite::None) => "sent with every request, whichever site starts it",
        }
    }

    fn max_age(&self) -> String {
        self.max_age
            .map_or_else(|| "(none)".to_owned(), |d| d.whole_seconds().to_string())
    }

    fn max_age_spoken(&self) -> String {
        self.max_age.as_ref().map_or_else(
            || "the browser forgets it when it closes".to_owned(),
            |d| {
                format!(
                    "seconds ({}) from the response that last sent it",
                    spoken(d)
                )
            },
        )
    }
}

/// `yes` / `no`, for the page's tables (askama passes arguments by reference).
fn yes_no(flag: &bool) -> &'static str {
    if *flag { "yes" } else { "no" }
}

/// `1 hour`, `3 days`, `90 seconds`: a duration as a reader says it.
fn spoken(duration: &Duration) -> String {
    let seconds = duration.whole_seconds();
    let (count, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(size, _)| seconds % size == 0 && seconds != 0)
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// An instant in UTC to the second, as RFC 3339 (`2026-11-28T12:00:00Z`).
fn instant(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .ok()
        .unwrap_or(at)
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// Renders the page for the request's session: everything it shows comes from the session
/// handle, so it is what the layer does for this session, not what the app meant to set up.
pub(crate) async fn render(
    tutorial: &Tutorial,
    session: &Session,
) -> Result<Response, session_tower::Error> {
    let data = session.data().await?;
    let username: Option<String> = session.get(USERNAME).await?;
    let values = data
        .to_json()
        .ok()
        .and_then(|map| serde_json::to_string_pretty(&map).ok())
        .unwrap_or_else(|| "(values that are not JSON)".to_owned());
    // The layer stores a session once it holds a value (no `with_save_uninitialized`), and
    // the app's routes never empty one without destroying it.
    let expiry = if data.is_empty() {
        None
    } else {
        Some(Expiry {
            idle: instant(session.expires_at().await?),
            idle_timeout: session.idle_timeout().await?.as_ref().map(spoken),
            absolute: session.absolute_deadline().await?.map(instant),
        })
    };
    let devices = match &username {
        Some(_) => Some(devices(session).await?),
        None => None,
    };
    let page = Page {
        devices,
        username,
        values,
        store: &tutorial.store_info,
        expiry,
        cookie: session.cookie(),
        max_age: session.max_age().await?,
    };
    Ok(match page.render() {
        // The page shows one visitor's session: no shared cache may keep it.
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "the page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "page error").into_response()
        }
    })
}

/// The sessions of the logged-in user, this one first, then the newest first.
async fn devices(session: &Session) -> Result<Devices, session_tower::Error> {
    let mut infos = match session.sessions_of_principal().await {
        Ok(infos) => infos,
        Err(session_tower::Error::PrincipalsUnsupported) => {
            return Ok(Devices {
                available: false,
                list: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    infos.sort_by_key(|info| (!info.current, std::cmp::Reverse(info.created_at)));
    let list = infos
        .into_iter()
        .map(|info| Device {
            user_agent: info
                .get::<String>(USER_AGENT)
                .ok()
                .flatten()
                .unwrap_or_else(|| "(unknown browser)".to_owned()),
            created: instant(info.created_at),
            expires: instant(info.expires_at),
            current: info.current,
            handle: info.handle,
        })
        .collect();
    Ok(Devices {
        available: true,
        list,
    })
}

#[cfg(test)]
mod tests {
    use super::{instant, spoken};
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn durations_are_spoken_in_their_largest_whole_unit() {
        assert_eq!(spoken(&Duration::hours(1)), "1 hour");
        assert_eq!(spoken(&Duration::days(1)), "1 day");
        assert_eq!(spoken(&Duration::days(30)), "30 days");
        assert_eq!(spoken(&Duration::minutes(90)), "90 minutes");
        assert_eq!(spoken(&Duration::seconds(61)), "61 seconds");
        assert_eq!(spoken(&Duration::ZERO), "0 seconds");
    }

    #[test]
    fn instants_are_utc_rfc3339_to_the_second() {
        assert_eq!(
            instant(datetime!(2026-11-28 13:30:05.678 +01:00)),
            "2026-11-28T12:30:05Z"
        );
    }
}
