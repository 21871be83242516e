//! The command line: every option also read from an environment variable.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser};

use crate::login::Credentials;
use crate::store::DEFAULT_STORE;

/// The Express session tutorial's app, in Rust, on session-tower.
///
/// Open the printed address in a browser and log in, or follow the tutorial with curl.
#[derive(Debug, Parser)]
#[command(name = "express-tutorial", version)]
pub struct Options {
    /// Where sessions live: memory, sqlite://FILE, redis://HOST, postgres://...,
    /// mysql://..., mongodb://...
    #[arg(long, value_name = "URL", env = "SESSION_STORE", default_value = DEFAULT_STORE,
          value_parser = NonEmptyStringValueParser::new())]
    pub store: String,

    /// The address to listen on. On any but a loopback address the cookie is Secure: put
    /// HTTPS in front
    #[arg(
        long,
        value_name = "ADDR",
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub listen: SocketAddr,

    /// The file holding the cookie signing key; created with 384 random bits (mode 0600) if
    /// missing
    #[arg(
        long,
        value_name = "PATH",
        env = "SESSION_KEY_FILE",
        default_value = "express-tutorial.key"
    )]
    pub key_file: PathBuf,

    /// The signing key itself (32 bytes or more), instead of a file. Prefer the variable: a
    /// command line is visible to other users of the machine
    #[arg(long, value_name = "KEY", env = "SESSION_KEY", hide_env_values = true,
          value_parser = NonEmptyStringValueParser::new())]
    pub key: Option<String>,

    /// The username /login accepts
    #[arg(long, value_name = "NAME", env = "DEMO_USERNAME",
          default_value = Credentials::TUTORIAL_USERNAME,
          value_parser = NonEmptyStringValueParser::new())]
    pub demo_username: String,

    /// The password /login accepts
    #[arg(long, value_name = "PASSWORD", env = "DEMO_PASSWORD",
          default_value = Credentials::TUTORIAL_PASSWORD, hide_env_values = true,
          value_parser = NonEmptyStringValueParser::new())]
    pub demo_password: String,

    /// Share sessions with the Express app beside this one (express/app.js): express-session's
    /// cookie (connect.sid) signed with --secret, and the store's Express-compatible layout
    /// (redis://, postgres:// or mongodb://)
    #[arg(long, env = "EXPRESS_COMPATIBLE")]
    pub express: bool,

    /// With --express: the Express app's cookie secret, repeated or comma-separated for
    /// several (the first signs, all verify). Prefer the variable: a command line is visible
    /// to other users of the machine
    #[arg(long = "secret", value_name = "SECRET", env = "SESSION_SECRETS",
          hide_env_values = true, value_delimiter = ',',
          value_parser = NonEmptyStringValueParser::new())]
    pub secrets: Vec<String>,

    /// `--key-file` was given on the command line, so it wins over `SESSION_KEY`.
    #[arg(skip)]
    key_file_on_command_line: bool,
}

/// The command, where an empty variable counts as unset (clap would take it as an empty
/// value, which no option accepts).
fn command() -> clap::Command {
    Options::command().mut_args(|arg| {
        let empty = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|value| value.is_empty());
        if empty { arg.env(None) } else { arg }
    })
}

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The key itself (`--key` or `SESSION_KEY`).
    Value(Vec<u8>),
    /// A file holding it, created if missing (`--key-file` or `SESSION_KEY_FILE`).
    File(PathBuf),
}

impl Options {
    /// The options from the process's command line and environment; on an error, or for
    /// `--help` and `--version`, prints clap's message and exits.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_matches(&command().get_matches()).unwrap_or_else(|error| error.exit())
    }

    /// The options from `args` (the first is the program's name) and the environment.
    ///
    /// # Errors
    ///
    /// clap's error for an unknown option, a missing value or a value that does not parse
    /// (also for `--help` and `--version`, whose text is the error's).
    pub fn try_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::from_matches(&command().try_get_matches_from(args)?)
    }

    fn from_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut options = Self::from_arg_matches(matches)?;
        options.key_file_on_command_line =
            matches.value_source("key_file") == Some(ValueSource::CommandLine);
        if options.express && options.secrets.is_empty() {
            return Err(command().error(
                ErrorKind::MissingRequiredArgument,
                "--express needs the Express app's cookie secret: --secret or SESSION_SECRETS",
            ));
        }
        // SESSION_SECRETS may be set for the Express app in the same shell: only the option
        // itself is refused without --express.
        if !options.express && matches.value_source("secrets") == Some(ValueSource::CommandLine) {
            return Err(command().error(
                ErrorKind::ArgumentConflict,
                "--secret is the Express app's secret, used only with --express",
            ));
        }
        Ok(options)
    }

    /// Where the signing key comes from: `--key-file` if given on the command line, else
    /// `--key` / `SESSION_KEY` if set, else `SESSION_KEY_FILE` or the default file.
    #[must_use]
    pub fn key_source(&self) -> KeySource {
        match &self.key {
            Some(key) if !self.key_file_on_command_line => KeySource::Value(key.clone().into()),
            _ => KeySource::File(self.key_file.clone()),
        }
    }

    /// The Express app's secrets (`--secret`), as bytes, in order.
    #[must_use]
    pub fn express_secrets(&self) -> Vec<Vec<u8>> {
        self.secrets.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    /// The account `/login` accepts.
    #[must_use]
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.demo_username, &self.demo_password)
    }
}

#[cfg(test)]
mod tests {
    use super::{KeySource, Options};

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory as _;
        Options::command().debug_assert();
    }

    /// Every option given on the command line, so that no variable of the environment running
    /// the test can change the outcome (the variables are tested through the binary).
    #[test]
    fn command_line_sets_every_option_and_key_file_wins() {
        let options = Options::try_from_args([
            "express-tutorial",
            "--store",
            "redis://127.0.0.1:6379",
            "--listen",
            "0.0.0.0:8080",
            "--key-file",
            "other.key",
            "--key",
            "a key that loses to the key file option",
            "--demo-username",
            "alice",
            "--demo-password",
            "wonderland",
        ])
        .expect("valid arguments");
        assert_eq!(options.store, "redis://127.0.0.1:6379");
        assert_eq!(options.listen, "0.0.0.0:8080".parse().expect("address"));
        assert_eq!(options.key_source(), KeySource::File("other.key".into()));
        assert_eq!(options.credentials().username(), "alice");
        let error = Options::try_from_args(["express-tutorial", "--demo-password", ""])
            .expect_err("an empty password is refused");
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn express_takes_secrets_repeated_or_comma_separated() {
        let options = Options::try_from_args([
            "express-tutorial",
            "--express",
            "--secret",
            "your-secret-key,an-older-secret",
            "--secret",
            "a third",
        ])
        .expect("valid arguments");
        assert!(options.express);
        assert_eq!(
            options.express_secrets(),
            [&b"your-secret-key"[..], b"an-older-secret", b"a third"]
        );
    }
}
